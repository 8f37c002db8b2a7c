"""Where webhooks may go: the hosts the operator allows (setting `webhook_hosts`), and the addresses
those hosts may resolve to.

A webhook URL is checked when it is given (a job's callback, a subscription) and again right before
every delivery, this time with the addresses its host resolves to; the delivery then connects to the
very address that was checked, so neither a URL nor a DNS answer can point jobhouse at a machine the
operator did not allow (server-side request forgery). The rules:

- only ``http`` and ``https``; no user name or password in the URL; at most `URL_MAX` characters;
- the URL's host must match an entry of `webhook_hosts`: a name (``hooks.example.com``), any
  subdomain of one (``*.example.com``, not the name itself), any host (``*``), or an address
  (``10.0.0.5``, ``[fd00::5]``); an entry may end with ``:port`` to allow that port only;
- every address the host resolves to must be public, except that
  - a loopback, private or otherwise non-public address is allowed when the entry that matched
    names the host exactly (not a ``*`` pattern);
  - a link-local address (``169.254.0.0/16``, where clouds serve instance metadata, and
    ``fe80::/10``), a known metadata address, an unspecified, multicast or reserved address is
    allowed only when that very address is listed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobhouse.errors import WebhookRefused

if TYPE_CHECKING:
    import httpx  # loaded when a URL is checked: the settings need only the rules

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The longest webhook URL accepted.
URL_MAX = 2048
#: Metadata services that are not link-local: AWS's IPv6 one and Alibaba Cloud's.
METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class HostRule:
    """One entry of `webhook_hosts`."""

    host: str  # a lower-case name, "*", "*.<suffix>", or an address's text
    port: int | None = None
    address: IPAddress | None = None

    @property
    def exact(self) -> bool:
        """Whether the entry names one host (not a ``*`` pattern)."""
        return not self.host.startswith("*")

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def parse_rule(entry: str) -> HostRule:
    """An entry of `webhook_hosts`; ValueError naming it when it is not one."""
    text = entry.strip().lower()
    host, port = text, None
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r} is not a host, host:port or [IPv6]:port")
        port = _port(entry, rest[1:]) if rest else None
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(entry, number)
    address = _address(host)
    if address is not None:
        return HostRule(str(address), port, address)
    name = host.removeprefix("*.") if host != "*" else "x"
    if not _NAME.match(name) or len(name) > 253:
        raise ValueError(f"{entry!r} is not a host name, *.domain, * or an IP address (with an optional :port)")
    return HostRule(host.rstrip("."), port)


def parse_rules(entries: Iterable[str]) -> tuple[HostRule, ...]:
    return tuple(parse_rule(entry) for entry in entries)


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL that passed the rules, and the entry that allowed it."""

    url: httpx.URL
    host: str
    port: int
    rule: HostRule


class HostPolicy:
    """The rules of `webhook_hosts` (none: every webhook URL is refused)."""

    def __init__(self, rules: Iterable[HostRule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def of(cls, entries: Iterable[str]) -> HostPolicy:
        return cls(parse_rules(entries))

    def check(self, raw: str) -> Target:
        """The URL, if it may be called (its address still to be checked when it is resolved, unless
        it is an address already); `WebhookRefused` naming the reason if not."""
        if not self.rules:
            raise WebhookRefused("Webhooks are off on this server: it allows no hosts (setting webhook_hosts)")
        if len(raw) > URL_MAX:
            raise WebhookRefused(f"Webhook URL refused: longer than {URL_MAX} characters")
        import httpx

        try:
            url = httpx.URL(raw)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise WebhookRefused("Webhook URL refused: not a valid URL") from None
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            raise WebhookRefused("Webhook URL refused: only http:// and https:// URLs with a host")
        if url.userinfo:
            raise WebhookRefused("Webhook URL refused: it must not carry a user name or password")
        if url.fragment:
            raise WebhookRefused("Webhook URL refused: it must not have a #fragment")
        host = url.host.lower().rstrip(".")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        if _address(host) is None and not _NAME.match(host):
            raise WebhookRefused("Webhook URL refused: its host is not a valid host name or address")
        rule = next((r for r in self.rules if r.matches(host, port)), None)
        if rule is None:
            shown = f"[{host}]" if ":" in host else host
            raise WebhookRefused(f"Webhook URL refused: host {shown}:{port} is not allowed (setting webhook_hosts)")
        target = Target(url, host, port, rule)
        address = _address(host)
        if address is not None:
            self.check_address(target, address)
        return target

    def check_address(self, target: Target, address: IPAddress) -> None:
        """`WebhookRefused` unless `target` may connect to `address` (see the module's rules)."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(r.address == address and (r.port is None or r.port == target.port) for r in self.rules):
            return  # listed itself
        if (
            address.is_link_local
            or address.is_multicast
            or address.is_unspecified
            or address.is_reserved
            or address in METADATA
        ):
            raise WebhookRefused(
                f"Webhook URL refused: {target.host} is at {address}, a link-local, metadata or reserved address; "
                "allowed only when that address is listed in webhook_hosts"
            )
        if not address.is_global and not target.rule.exact:
            raise WebhookRefused(
                f"Webhook URL refused: {target.host} is at {address}, which is not public; allowed only when "
                f"the host is listed by name in webhook_hosts (not matched by {target.rule})"
            )

    async def resolve(self, target: Target) -> IPAddress:
        """The address to connect to: the first the host resolves to, once every one passed the
        rules (`WebhookRefused` if one does not; `OSError` when the name does not resolve)."""
        address = _address(target.host)
        if address is not None:
            return address
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found))
        if not addresses:
            raise OSError(f"{target.host} has no address")
        for address in addresses:
            self.check_address(target, address)
        return addresses[0]
