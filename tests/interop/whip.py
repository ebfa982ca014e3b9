"""The WHIP/WHEP signaling every client here shares: POST an offer, DELETE the session."""

import urllib.error
import urllib.parse
import urllib.request

HTTP_TIMEOUT_S = 10


class SignalingError(Exception):
    pass


def post_offer(endpoint, offer_sdp):
    """POSTs an SDP offer; returns (answer SDP, absolute session URL). Anything but 201 raises."""
    request = urllib.request.Request(
        endpoint,
        data=offer_sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            status = response.status
            location = response.headers.get("Location")
            content_type = response.headers.get("Content-Type", "")
            body = response.read().decode()
    except urllib.error.HTTPError as e:
        raise SignalingError(f"POST {endpoint}: {e.code} {e.read().decode(errors='replace').strip()}") from None
    if status != 201:
        raise SignalingError(f"POST {endpoint}: expected 201, got {status}")
    if not location:
        raise SignalingError(f"POST {endpoint}: 201 without a Location header")
    if not content_type.startswith("application/sdp"):
        raise SignalingError(f"POST {endpoint}: answer has Content-Type {content_type!r}")
    return body, urllib.parse.urljoin(endpoint, location)


def delete_session(session_url):
    """DELETEs a WHIP/WHEP session; returns the HTTP status."""
    request = urllib.request.Request(session_url, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def strip_candidates(sdp):
    """The offer an OBS-like encoder sends: no a=candidate and no a=end-of-candidates lines."""
    lines = sdp.splitlines()
    kept = [l for l in lines if not l.startswith(("a=candidate:", "a=end-of-candidates"))]
    return "\r\n".join(kept) + "\r\n"
