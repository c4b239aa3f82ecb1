# Builds an AssignedTask as Aurora's scheduler sends it in TaskInfo.data
# (MesosTaskFactory.serializeTask: ThriftBinaryCodec.encode, TBinaryProtocol)
# with the Thrift bindings generated from Aurora's own api.thrift.
import sys
sys.path.insert(0, "gen-py")
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport
from gen.apache.aurora.api.ttypes import *

def encode(obj):
    buf = TTransport.TMemoryBuffer()
    obj.write(TBinaryProtocol.TBinaryProtocol(buf))
    return buf.getvalue()

job_json = open(sys.argv[1], "rb").read().decode()
role, env, name = sys.argv[2], sys.argv[3], sys.argv[4]
cfg = TaskConfig(
    job=JobKey(role=role, environment=env, name=name),
    owner=Identity(user=role),
    isService=True, priority=0, maxTaskFailures=1, production=False, tier="preemptible",
    resources=[Resource(numCpus=0.1), Resource(ramMb=16), Resource(diskMb=16),
               Resource(namedPort="http"), Resource(namedPort="health")],
    constraints=[Constraint(name="host", constraint=TaskConstraint(limit=LimitConstraint(limit=1))),
                 Constraint(name="rack", constraint=TaskConstraint(value=ValueConstraint(negated=True, values={"r9"})))],
    mesosFetcherUris=[MesosFetcherURI(value="https://example.invalid/pkg.tgz", extract=True, cache=False)],
    taskLinks={"http": "http://%host%:%port:http%"},
    contactEmail="www@example.invalid",
    executorConfig=ExecutorConfig(name="AuroraExecutor", data=job_json),
    metadata=[Metadata(key="owner", value="team-www")],
    partitionPolicy=PartitionPolicy(reschedule=True, delaySecs=30),
    container=Container(mesos=MesosContainer(volumes=[Volume(containerPath="/data", hostPath="/srv/data", mode=Mode.RO)])),
)
at = AssignedTask(taskId="1606723200000-%s-%s-%s-0-2b7f4c1e-6b1a-4d6f-9d0c-3f2e1a0b9c8d" % (role, env, name),
                  slaveId="e3b0c442-98fc-4c14-9afb-f4c8996fb924-S0", slaveHost="agent1.example.invalid",
                  task=cfg, assignedPorts={"http": 31000, "health": 31001}, instanceId=0)
sys.stdout.buffer.write(encode(at))
