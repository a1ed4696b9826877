"""Checks the loopback fake of Slack's Web API with Slack's own Python client.

Every method the adapter calls is called here through slack_sdk.WebClient, which decodes
the answers the way Slack's official SDK does; a shape it cannot read fails the check.

Usage: web_api.py BASE_URL BOT_TOKEN CHANNEL USERGROUP CLIENT_ID CLIENT_SECRET CODE
Prints one JSON line with what was checked.
"""

import json
import sys

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def expect_error(call, code):
    try:
        call()
    except SlackApiError as e:
        assert e.response["ok"] is False, e.response
        assert e.response["error"] == code, e.response
        return e.response
    raise AssertionError(f"expected the error {code}")


def main():
    base_url, token, channel, usergroup, client_id, client_secret, code = sys.argv[1:8]
    checked = []
    client = WebClient(token=token, base_url=base_url)

    # The fake's scripted rate limit (queued before the script starts), as the official client sees it.
    try:
        client.auth_test()
    except SlackApiError as e:
        assert e.response.status_code == 429, e.response.status_code
        assert e.response.headers.get("Retry-After") == "7", e.response.headers
        checked.append("429")
    else:
        raise AssertionError("expected the scripted 429")

    r = client.auth_test()
    assert r["ok"] and r["user_id"] and r["team_id"] and r["bot_id"], r.data
    checked.append("auth.test")

    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}},
        {"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v",
                                          "text": {"type": "plain_text", "text": "Helpful"}}]},
    ]
    root = client.chat_postMessage(channel=channel, text="root")
    r = client.chat_postMessage(channel=channel, text="hello", thread_ts=root["ts"], blocks=blocks)
    assert r["ok"] and r["channel"] == channel and r["ts"], r.data
    assert r["message"]["text"] == "hello" and r["message"]["thread_ts"] == root["ts"], r.data
    assert r["message"]["blocks"][0]["type"] == "section", r.data
    ts = r["ts"]
    checked.append("chat.postMessage")

    r = client.chat_update(channel=channel, ts=ts, text="edited", blocks=[])
    assert r["ok"] and r["ts"] == ts and r["text"] == "edited" and r["message"]["text"] == "edited", r.data
    expect_error(lambda: client.chat_update(channel=channel, ts="1.000000", text="x"), "message_not_found")
    checked.append("chat.update")

    r = client.reactions_add(channel=channel, name="eyes", timestamp=ts)
    assert r["ok"], r.data
    expect_error(lambda: client.reactions_add(channel=channel, name="eyes", timestamp=ts), "already_reacted")
    checked.append("reactions.add")
    r = client.reactions_remove(channel=channel, name="eyes", timestamp=ts)
    assert r["ok"], r.data
    expect_error(lambda: client.reactions_remove(channel=channel, name="eyes", timestamp=ts), "no_reaction")
    checked.append("reactions.remove")

    r = client.usergroups_users_list(usergroup=usergroup)
    assert r["ok"] and isinstance(r["users"], list) and r["users"], r.data
    expect_error(lambda: client.usergroups_users_list(usergroup="SNOPE"), "no_such_subteam")
    checked.append("usergroups.users.list")

    anonymous = WebClient(base_url=base_url)
    r = anonymous.oauth_v2_access(client_id=client_id, client_secret=client_secret, code=code)
    assert r["ok"] and r["access_token"].startswith("xoxb-") and r["token_type"] == "bot", r.data
    assert r["team"]["id"] and r["bot_user_id"] and r["authed_user"]["id"], r.data
    expect_error(lambda: anonymous.oauth_v2_access(client_id=client_id, client_secret=client_secret, code=code),
                 "invalid_code")
    checked.append("oauth.v2.access")

    expect_error(lambda: WebClient(token="xoxb-wrong", base_url=base_url).auth_test(), "invalid_auth")

    print(json.dumps({"checked": checked}))


if __name__ == "__main__":
    main()
