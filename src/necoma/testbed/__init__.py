"""Test platform: labelled scenarios, replay, the network-namespace lab, evaluation."""
