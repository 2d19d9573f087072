"""The RPZ zone necoma owns: actions -> zone text, and zone text -> entries (pure, no I/O).

RPZ (draft-vixie-dnsop-dns-rpz) policies are written as records under the zone's origin:
`name CNAME .` answers NXDOMAIN, `name CNAME *.` NODATA, `rpz-passthru.` lets it through,
`rpz-drop.` drops the query, and address records (local data) redirect to a walled garden.
A leading `*.` label extends a trigger to every subdomain. Each action becomes one block:

    ; necoma id=act-0123 expires=2030-01-01T00:00:00Z policy=nxdomain
    evil.example 60 IN CNAME .
    *.evil.example 60 IN CNAME .

The comment line is the only state: `installed()` and expiry read it back from the file.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dns.exception
import dns.name

from necoma.protect.model import Action, DriverError

POLICIES = {"nxdomain": "CNAME .", "nodata": "CNAME *.", "passthru": "CNAME rpz-passthru.",
            "drop": "CNAME rpz-drop.", "redirect": None}
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")  # host names plus '_' (service labels)
_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,120}$")  # goes into a comment line: no spaces
_HEAD = re.compile(r"^; necoma id=(?P<id>\S+) expires=(?P<expires>\S+) policy=(?P<policy>\S+)$")
_SERIAL = re.compile(r"\bSOA\b.*\(\s*(\d+)\s")


@dataclass(frozen=True)
class Entry:
    """One action's block in the zone."""

    action_id: str
    expires: datetime
    policy: str
    records: tuple[str, ...]  # "owner TTL IN TYPE RDATA", owner relative to the zone origin

    def expired(self, now: datetime) -> bool:
        return self.expires <= now


def domain_names(domain: str, origin: dns.name.Name) -> list[dns.name.Name]:
    """Validate one domain; return the relative name(s) to block (as RPZ owners are written).

    Unicode names are converted with IDNA 2008 (UTS 46, non-transitional) and IDNA 2003;
    when the two disagree (faß.de -> xn--fa-hia.de or fass.de) both are blocked, since
    clients use either, and a name only IDNA 2003 accepts (emoji domains, which malware
    registers too) is still blockable. DriverError says what is wrong with a bad one.
    """
    text = domain.strip().rstrip(".")
    if not text:
        raise DriverError(f"domain {domain!r} is empty")
    if is_address(text):
        raise DriverError(f"domain {domain!r} is an IP address: RPZ blocks names, drop the address instead")
    if text.startswith("*."):
        raise DriverError(f"domain {domain!r}: give the name without '*.'; subdomains are blocked "
                          "unless the action sets params subdomains = false")
    names: list[dns.name.Name] = []
    errors: list[str] = []
    if text.isascii():
        candidates = [lambda: dns.name.from_text(text, None)]
    else:
        candidates = [lambda c=c: dns.name.from_unicode(text, None, idna_codec=c)
                      for c in (dns.name.IDNA_2008_Practical, dns.name.IDNA_2003)]
    for make in candidates:
        try:
            name = make()
            # The owner as it will sit in the zone, with the wildcard label: checks the 255-octet limit.
            dns.name.Name(("*", *name.labels, *origin.labels))
        except dns.name.LabelTooLong:
            raise DriverError(f"domain {domain!r}: a label is longer than 63 octets") from None
        except dns.name.NameTooLong:
            raise DriverError(f"domain {domain!r}: too long for the RPZ zone {origin} "
                              "(255 octets in all, with the zone name)") from None
        except (dns.exception.DNSException, UnicodeError, ValueError) as e:
            errors.append(str(e))
            continue
        labels = [lab.decode("ascii", "replace").lower() for lab in name.labels]
        bad = [lab for lab in labels if not _LABEL.match(lab)]
        if not labels or bad:
            raise DriverError(f"domain {domain!r}: label {bad[0] if bad else ''!r} may hold only letters, "
                              "digits, '-' (not first or last) and '_'")
        if labels[-1].startswith("rpz-"):
            # rpz-ip, rpz-nsdname, rpz-client-ip ... turn an owner into another kind of trigger.
            raise DriverError(f"domain {domain!r} ends in {labels[-1]!r}, an RPZ trigger keyword, not a domain")
        rel = dns.name.Name([lab.encode() for lab in labels])
        if rel not in names:
            names.append(rel)
    if not names:
        raise DriverError(f"domain {domain!r} is not a valid (IDNA) domain name: {'; '.join(errors)}")
    return names


def is_ldh(label: bytes) -> bool:
    """A host-style label (letters, digits, inner '-', and '_' for service labels)."""
    return bool(_LABEL.match(label.decode("ascii", "replace").lower()))


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def entry_for(action: Action, origin: dns.name.Name, record_ttl: int, walled_garden: list[str],
              now: datetime) -> Entry:
    """The zone block enforcing one block_domain action."""
    if action.kind != "block_domain":
        raise DriverError(f"RPZ enforces block_domain, not {action.kind!r} (action {action.id})")
    if not _ID.match(action.id):
        raise DriverError(f"action id {action.id!r} is empty or has characters unsafe in a zone comment")
    m = action.match
    ignored = {k for k in ("dst_prefixes", "src_prefixes", "protocol", "src_ports", "dst_ports",
                           "packet_length", "fragment", "tcp_flags") if getattr(m, k) not in (None, ())}
    if ignored:
        raise DriverError(f"action {action.id}: RPZ matches domain names only, not {sorted(ignored)}")
    if not m.domains:
        raise DriverError(f"action {action.id} names no domain")
    policy = str(action.params.get("rpz_action", "nxdomain")).lower()
    if policy not in POLICIES:
        raise DriverError(f"action {action.id}: rpz_action {policy!r} is not one of {', '.join(POLICIES)}")
    rdata = [POLICIES[policy]] if POLICIES[policy] else _redirect(action, walled_garden)
    owners: list[str] = []
    subdomains = action.params.get("subdomains", True)
    if not isinstance(subdomains, bool):
        raise DriverError(f"action {action.id}: params subdomains must be true or false, not {subdomains!r}")
    for d in m.domains:
        for name in domain_names(d, origin):
            rel = name.to_text(omit_final_dot=True)
            owners.append(rel)
            if subdomains:
                owners.append("*." + rel)
    records = tuple(f"{o} {record_ttl} IN {r}" for o in dict.fromkeys(owners) for r in rdata)
    expires = action.expires_at or now + timedelta(seconds=action.ttl_seconds)
    if expires <= now:
        raise DriverError(f"action {action.id} expired at {expires.isoformat()}; not installing it")
    return Entry(action.id, expires.replace(microsecond=0), policy, records)


def _redirect(action: Action, walled_garden: list[str]) -> list[str]:
    targets = action.params.get("redirect_to", walled_garden)
    if isinstance(targets, str):
        targets = [targets]
    if not targets:
        raise DriverError(f"action {action.id}: policy redirect needs params redirect_to or option walled_garden")
    out = []
    for t in targets:
        try:
            ip = ipaddress.ip_address(str(t))
        except ValueError:
            raise DriverError(f"action {action.id}: redirect target {t!r} is not an IP address") from None
        out.append(f"{'A' if ip.version == 4 else 'AAAA'} {ip}")
    return out


def conflicts(entries: list[Entry]) -> None:
    """Refuse two policies on one owner (a CNAME cannot share its name); named-checkzone would too,
    but this names the actions involved."""
    seen: dict[str, tuple[str, str]] = {}  # owner -> (rdata type+value set key, action id)
    for e in entries:
        by_owner: dict[str, list[str]] = {}
        for r in e.records:
            owner, _ttl, _cls, rest = r.split(" ", 3)
            by_owner.setdefault(owner, []).append(rest)
        for owner, rdatas in by_owner.items():
            key = "|".join(sorted(rdatas))
            if owner in seen and seen[owner][0] != key:
                raise DriverError(f"action {e.action_id} ({e.policy}) conflicts with {seen[owner][1]} "
                                  f"on {owner}: one name takes one RPZ policy")
            seen.setdefault(owner, (key, e.action_id))


def render(origin: dns.name.Name, serial: int, entries: list[Entry], point: str) -> str:
    lines = [f"; necoma RPZ zone of enforcement point {point}: generated, rewritten on every change",
             f"$ORIGIN {origin.to_text()}", "$TTL 60",
             f"@ IN SOA localhost. hostmaster.localhost. ( {serial} 3600 600 86400 60 )",
             "@ IN NS localhost.", ""]
    for e in entries:
        lines.append(f"; necoma id={e.action_id} expires={e.expires.strftime('%Y-%m-%dT%H:%M:%SZ')} "
                     f"policy={e.policy}")
        lines.extend(e.records)
        lines.append("")
    return "\n".join(lines)


def parse(text: str) -> tuple[int, list[Entry]]:
    """(SOA serial, entries) of a zone this module rendered."""
    serial, entries = 0, []
    current: dict | None = None
    for line in text.splitlines():
        if serial == 0 and (m := _SERIAL.search(line)):
            serial = int(m.group(1))
        elif m := _HEAD.match(line):
            if current:
                entries.append(Entry(**current))
            expires = datetime.strptime(m["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            current = {"action_id": m["id"], "expires": expires, "policy": m["policy"], "records": ()}
        elif current is not None and line.strip() and not line.startswith(";"):
            current["records"] = (*current["records"], line.strip())
    if current:
        entries.append(Entry(**current))
    return serial, entries
