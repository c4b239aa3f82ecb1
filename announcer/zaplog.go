package announcer

import (
	"fmt"

	"go.uber.org/zap"
)

// zkLogger adapts zap to go-zookeeper's one-method logger. The client logs
// connection changes and failures only, so Info is the right level.
type zkLogger struct{ log *zap.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...))
}
