"""The threat timeline (NECOMAtter): posts with markdown, hashtags, mentions, replies, and regex streams for bots."""
