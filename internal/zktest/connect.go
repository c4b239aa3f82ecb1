package zktest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// ConnectWith opens a ZooKeeper session to addrs through dial (e.g. a
// dialer into a network namespace), closed when the test ends.
func ConnectWith(t testing.TB, dial func(ctx context.Context, network, addr string) (net.Conn, error), addrs ...string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect(addrs, 10*time.Second,
		zk.WithLogInfo(false),
		zk.WithDialer(func(network, addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return dial(ctx, network, addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}
