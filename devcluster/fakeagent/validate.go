package fakeagent

import (
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// callError is a validation error in Mesos' words, capitals included: the
// agent answers 400 with it.
type callError string

func (e callError) Error() string { return string(e) }

// errInvalidUUID is stout's error text (3rdparty/stout/include/stout/uuid.hpp,
// UUID::fromBytes).
var errInvalidUUID error = callError("Not a valid UUID")

// validUUID is stout's UUID::fromBytes: 16 bytes whose RFC 4122 version
// (boost's uuid::version(), the high nibble of byte 6) is known, 1 to 5.
// Random bytes pass only about 5 times in 16.
func validUUID(b []byte) error {
	if len(b) != 16 {
		return errInvalidUUID
	}
	if v := b[6] >> 4; v < 1 || v > 5 {
		return errInvalidUUID
	}
	return nil
}

// validateCall follows Mesos' executor call validation
// (src/common/validation.cpp, validateExecutorCall), messages included.
// Its first check, Call::IsInitialized, refuses a message missing a proto2
// required field; of those, mesos-go can tell only the pointer-typed ones
// (see initialized). The v1 ids are optional messages whose value is
// required: mesos-go cannot tell an absent id from an empty one, so an
// empty id counts as absent.
func validateCall(c *executor.Call) error {
	if err := initialized(c); err != nil {
		return err
	}
	// proto2 cannot tell an absent type from UNKNOWN (0); Mesos answers
	// both with 400 (absent) or 501 (UNKNOWN): the fake picks 400.
	if c.Type == executor.Call_UNKNOWN {
		return callError("Expecting 'type' to be present")
	}
	if c.ExecutorID.Value == "" {
		return callError("Expecting 'executor_id' to be present")
	}
	if c.FrameworkID.Value == "" {
		return callError("Expecting 'framework_id' to be present")
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return callError("Expecting 'subscribe' to be present")
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return callError("Expecting 'update' to be present")
		}
		return validateStatus(c, &c.Update.Status)
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return callError("Expecting 'message' to be present")
		}
	}
	return nil
}

func validateStatus(c *executor.Call, st *mesos.TaskStatus) error {
	if st.UUID == nil {
		return callError("Expecting 'uuid' to be present")
	}
	if err := validUUID(st.UUID); err != nil {
		return err
	}
	if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
		return callError("ExecutorID in Call: " + c.ExecutorID.Value + " does not match ExecutorID in TaskStatus: " + st.ExecutorID.Value)
	}
	if st.GetSource() != mesos.SOURCE_EXECUTOR {
		return callError("Received Call from executor " + c.ExecutorID.Value + " of framework " + c.FrameworkID.Value + " with invalid source, expecting 'SOURCE_EXECUTOR'")
	}
	if st.GetState() == mesos.TASK_STAGING {
		return callError("Received TASK_STAGING from executor " + c.ExecutorID.Value + " of framework " + c.FrameworkID.Value + " which is not allowed")
	}
	return nil
}

// initialized checks the proto2 required fields that mesos-go can tell
// missing (google::protobuf::Message::IsInitialized, the first check of
// validateExecutorCall): TaskStatus.state is the only pointer among them;
// required strings and messages are always encoded, empty or not, and so
// always present for Mesos too.
func initialized(c *executor.Call) error {
	if c.Update != nil && c.Update.Status.State == nil {
		return callError("Not initialized: update.status.state")
	}
	for i, u := range c.GetSubscribe().GetUnacknowledgedUpdates() {
		if u.Status.State == nil {
			return callError(fmt.Sprintf("Not initialized: subscribe.unacknowledged_updates[%d].status.state", i))
		}
	}
	return nil
}
