"""The in-repo WeCom simulator: WeCom's documented behaviour (wecom.md), limits and errors.

It is an external system stand-in, so its state lives in process memory. Every time and
duration is simulated and read through the configured Clock.

```python
sim = WeComSimulator(SimConfig(corp_id=…, secret=…, agent_id=…, token=…, encoding_aes_key=…,
                               callback_url=…, clock=clock, seed=…))
sim.app                                     # aiohttp Application: /cgi-bin/… and /sim/…
sim.load_directory(users, escalation)       # {userid: name}, {owner: [officer, …]}
sim.add_customer_group(chat_id, name, owner, member_count, quota_used=0, *, notice="",
                       create_time=None, status=0, admins=())
sim.add_appchat(chat_id, name, members) ; sim.add_robot(key, chat_id)
sim.dismiss_group(chat_id) ; sim.rename_group(chat_id, name) ; sim.transfer_group(chat_id, owner)
sim.change_members(chat_id, delta) ; sim.group(chat_id) -> CustomerGroup | None
sim.invalidate_token() ; sim.set_faults(FaultConfig(…), …) ; sim.set_latency(LatencyConfig(…))
hold = sim.hold(api)  # its next call waits uncounted: hold.arrived, then hold.release.set()
await sim.post_text(from_user, content, msg_id=None) -> CallbackResult
await sim.post_chat_event(chat_id, change_type, update_detail="", **extra) -> CallbackResult
await sim.post_contact_event(user_id, external_user_id, change_type="add_external_contact")
cb = sim.build_text(from_user, content) ; await sim.deliver(cb)   # the same body, again
sim.records  (.deliveries, .drops, .errors, .callback_attempts, .call_counts, .fault_counts)
sim.deliveries_to(chat_id) ; sim.app_messages_to(userid) ; sim.drops(reason=None)
sim.calls(api) ; sim.errors_answered(code, api=None) ; sim.task(msgid) ; sim.tasks()
sim.owner_class(userid) ; sim.stats() ; await sim.close()

# 微信客服 (residents, bot.wecom.simulator.kf / residents) and members' media
open_kfid = sim.add_kf_account(name, open_kfid="") ; sim.kf_link(open_kfid, scene) -> url
sim.kf_resident(external_userid, kind=None | "prompt" | "late" | "never" | "refuses"
                | ResidentClass(…), *, replies=(), replier=None) -> Resident
await sim.kf_resident_enter(link_or_scene, external_userid, *, deliver=True, ago=0.0)
await sim.kf_resident_says(external_userid, text | photo_bytes | SimLocation(lat, lng, name,
                           address), *, open_kfid="", deliver=True, ago=0.0) -> KfPosted
await sim.kf_fail_send(msgid, fail_type) ; sim.kf_force_empty_pages(n)
sim.build_kf_notice(open_kfid) -> Callback          # a kf_msg_or_event with a fresh Token
sim.kf_messages_to(external_userid) -> [Outgoing] ; sim.kf_session(external_userid) -> Session
await sim.post_image(from_user, data=None, *, msg_id=None) ; sim.build_image(…)
await sim.post_location(from_user, lat, lng, *, label="", scale=15, msg_id=None)
```
KfPosted(msgid, open_kfid, callback, result): `await sim.deliver(posted.callback)` delivers the
same kf_msg_or_event again. Residents draw a class from the seed (most answer within minutes,
some hours later, some never, a few refuse → msg_send_fail fail_type 10); what they answer
comes from `replies`, `replier`, or a default that rates 满意/基本满意/不满意 when asked.

Served APIs (under /cgi-bin/): gettoken, message/send, appchat/send, webhook/send,
externalcontact/{add_msg_template, get_groupmsg_list_v2, get_groupmsg_task,
get_groupmsg_send_result, remind_groupmsg_send, cancel_groupmsg_send, groupchat/list,
groupchat/get}, kf/{account/list, add_contact_way, sync_msg, send_msg, send_msg_on_event,
service_state/get, service_state/trans}, media/get, auth/getuserinfo.

Member login (auth.py): the OAuth page inside the WeCom client (/connect/oauth2/authorize; the
member using the client is named by /sim/client?member=…&url=…), the QR screen of a desktop
browser (/wwlogin/sso/login, a simulated member "scans" it), codes single use and 5 minutes
(40029 / 42003); `sim.login.issue_code(userid)` for tests, `sim.login.trusted_hosts`.

Admin endpoints (JSON, for a simulator in another process): GET /sim/stats, /sim/records
(?chat_id= | ?userid=, &channel=, &limit=), /sim/drops (?reason=), /sim/tasks (?msgid=),
/sim/callbacks; POST /sim/directory, /sim/groups, /sim/post_text, /sim/chat_event,
/sim/contact_event, /sim/invalidate_token, /sim/faults, /sim/latency; 微信客服 and member
media: see bot.wecom.simulator.admin_kf.
"""

from bot.wecom.simulator.callbacks import Callback, CallbackResult
from bot.wecom.simulator.config import (
    ConfirmClass,
    FaultConfig,
    LatencyConfig,
    OwnerProfile,
    SimConfig,
)
from bot.wecom.simulator.records import CallbackAttempt, Delivery, Drop
from bot.wecom.simulator.residents import KfPosted, ResidentClass, SimLocation
from bot.wecom.simulator.simulator import WeComSimulator

__all__ = [
    "Callback",
    "CallbackAttempt",
    "CallbackResult",
    "ConfirmClass",
    "Delivery",
    "Drop",
    "FaultConfig",
    "KfPosted",
    "LatencyConfig",
    "OwnerProfile",
    "ResidentClass",
    "SimConfig",
    "SimLocation",
    "WeComSimulator",
]
