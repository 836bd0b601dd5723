"""The host steps of `collect` as Fabric tasks, for teams that drive their hosts with Fabric.

    collect-fab -H mp1,mp2 start-capture --backend 10.0.9.20:8443
    collect-fab -H be1 start-capture --role backend --mp 10.0.9.11,10.0.9.12 --backend 10.0.9.20:8443
    (reproduce the failing call)
    collect-fab -H mp1,mp2,be1 stop-capture
    collect-fab -H mp1,mp2 logs --message-id rrt-...
    collect-fab -H mp1,mp2,be1 facts
    collect package --from apigee-raw --org ORG --env ENV --proxy PROXY

`collect-fab` is Fabric's `fab` with this collection as its default and `-c` taking an importable module
name (`collect-fab -c collector.fabric ...`). Fabric's own `fab` looks for `-c NAME` only as NAME.py or NAME/
on the file system; with `fab`, use a fabfile.py holding `from collector.fabric import ns` (or add `ns` to the
team's own collection). tasks.py has the tasks, record.py the collection's record, hosts.py the per-host
settings.
"""

from collector.fabric.tasks import facts, init, logs, ns, start_capture, stop_capture

__all__ = ["facts", "init", "logs", "ns", "start_capture", "stop_capture"]
