"""Call flows shared by the call and patrol tests: a call answered end to
end (call.invite -> call.incoming -> call.accept -> call.accepted) and its
hang-up, each step checked the way a client would see it."""


async def answered_call(caller, callee, to, offer, answer, **fields):
    """caller invites `to` (a call.invite "to" object, plus any other invite
    fields); callee's device hears call.incoming and accepts with `answer`;
    caller hears call.accepted. Returns the call id and the call.incoming
    event."""
    r = await caller.ok("call.invite", to=to, sdp=offer, **fields)
    call_id = r["call_id"]
    incoming = await callee.next_event("call.incoming")
    assert incoming["call_id"] == call_id, incoming
    await callee.ok("call.accept", call_id=call_id, sdp=answer)
    accepted = await caller.next_event("call.accepted")
    assert accepted["call_id"] == call_id, accepted
    return call_id, incoming


async def hang_up(by, other, call_id):
    """`by` hangs up an answered call; both parties hear call.ended."""
    await by.ok("call.hangup", call_id=call_id)
    for c in (by, other):
        ev = await c.next_event("call.ended")
        assert ev["call_id"] == call_id and ev["reason"] == "hangup", ev
