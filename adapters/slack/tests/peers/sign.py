"""Signs request bodies the way Slack does, with slack_sdk's SignatureVerifier.

Usage: sign.py SECRET TIMESTAMP < body
Prints the X-Slack-Signature value.
"""

import sys

from slack_sdk.signature import SignatureVerifier


def main():
    secret, timestamp = sys.argv[1:3]
    body = sys.stdin.buffer.read().decode("utf-8")
    verifier = SignatureVerifier(secret)
    signature = verifier.generate_signature(timestamp=timestamp, body=body)
    # The official verifier must accept its own signature for a fresh timestamp.
    assert verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    sys.stdout.write(signature)


if __name__ == "__main__":
    main()
