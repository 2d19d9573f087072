"""The GameOver ZeuS DGA against the published test vector, and the generic DGA families."""
from __future__ import annotations

from datetime import date

from necoma.analyze.dga import families, gameover_zeus


def test_gameover_zeus_test_vector():
    assert gameover_zeus.domains(date(2014, 6, 1), 4) == [
        "jjxcu32oe5o6nsd22ugdd72i.com",
        "ckkg8f17uzqq11jpava31ajb0k2.net",
        "me8hlf1s0eqnsv8zqhuzn1mj2.biz",
        "147snji1mfy625q2bxm215gaz4g.org",
    ]


def test_gameover_zeus_day_list_shape():
    names = gameover_zeus.domains(date(2025, 3, 10))
    assert len(names) == len(set(names)) == 1000
    tlds = [n.rsplit(".", 1)[1] for n in names]
    assert tlds[:12] == ["com", "net", "biz", "org", "com", "net", "org", "net", "com", "org", "biz", "net"]
    assert all(set(n.split(".")[0]) <= set("0123456789abcdefghijklmnopqrstuvwxyz") for n in names)
    # a different day gives a different list; neighbours are available for skewed bot clocks
    assert not set(names) & set(gameover_zeus.domains(date(2025, 3, 11)))
    around = gameover_zeus.domains_around(date(2025, 3, 10))
    assert len(around) == 3000 and around[names[0]] == date(2025, 3, 10)


def test_generic_families_are_deterministic_and_distinct():
    day = date(2025, 3, 10)
    for family in families.FAMILIES:
        a = families.domains(family, day, 50, family_seed=3)
        assert a == families.domains(family, day, 50, family_seed=3)
        assert len(a) == len(set(a)) == 50
        assert a != families.domains(family, date(2025, 3, 11), 50, family_seed=3)
    assert all(d.endswith(".net") for d in families.domains("wordpair", day, 20))
