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
await sim.post_text(from_user, content, msg_id=None) -> CallbackResult
await sim.post_chat_event(chat_id, change_type, update_detail="", **extra) -> CallbackResult
await sim.post_contact_event(user_id, external_user_id, change_type="add_external_contact")
cb = sim.build_text(from_user, content) ; await sim.deliver(cb)   # the same body, again
sim.records  (.deliveries, .drops, .errors, .callback_attempts, .call_counts, .fault_counts)
sim.deliveries_to(chat_id) ; sim.app_messages_to(userid) ; sim.drops(reason=None)
sim.calls(api) ; sim.errors_answered(code, api=None) ; sim.task(msgid) ; sim.tasks()
sim.owner_class(userid) ; sim.stats() ; await sim.close()
```

Served APIs (under /cgi-bin/): gettoken, message/send, appchat/send, webhook/send,
externalcontact/{add_msg_template, get_groupmsg_list_v2, get_groupmsg_task,
get_groupmsg_send_result, remind_groupmsg_send, cancel_groupmsg_send, groupchat/list,
groupchat/get}.

Admin endpoints (JSON, for a simulator in another process): GET /sim/stats, /sim/records
(?chat_id= | ?userid=, &channel=, &limit=), /sim/drops (?reason=), /sim/tasks (?msgid=),
/sim/callbacks; POST /sim/directory, /sim/groups, /sim/post_text, /sim/chat_event,
/sim/contact_event, /sim/invalidate_token, /sim/faults, /sim/latency.
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
from bot.wecom.simulator.simulator import WeComSimulator

__all__ = [
    "Callback",
    "CallbackAttempt",
    "CallbackResult",
    "ConfirmClass",
    "Delivery",
    "Drop",
    "FaultConfig",
    "LatencyConfig",
    "OwnerProfile",
    "SimConfig",
    "WeComSimulator",
]
