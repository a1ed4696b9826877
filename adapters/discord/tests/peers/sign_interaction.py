"""Signs a Discord interaction request the way Discord does, for frontdesk's endpoint tests.

Usage: sign_interaction.py <seed hex> <timestamp>   (the body is read from stdin)

Prints the public key and the signature (hex), one per line. The signature is made with
PyNaCl over timestamp || body, then checked with the discord-interactions library's
verify_key (the check Discord's own examples use), so a signer that disagrees with Discord's
scheme fails here instead of in the Rust test.
"""

import sys

from discord_interactions import verify_key
from nacl.encoding import HexEncoder
from nacl.signing import SigningKey


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: sign_interaction.py <seed hex> <timestamp> < body", file=sys.stderr)
        return 2
    seed_hex, timestamp = sys.argv[1], sys.argv[2]
    body = sys.stdin.buffer.read()
    key = SigningKey(seed_hex, encoder=HexEncoder)
    public_hex = key.verify_key.encode(encoder=HexEncoder).decode()
    signature = key.sign(timestamp.encode() + body).signature.hex()
    if not verify_key(body, signature, timestamp, public_hex):
        print("discord_interactions.verify_key rejected our own signature", file=sys.stderr)
        return 1
    print(public_hex)
    print(signature)
    return 0


if __name__ == "__main__":
    sys.exit(main())
