package zktest_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/dewarhq/dewar/internal/netnstest"
	"github.com/dewarhq/dewar/internal/zktest"
)

// The end-to-end tests run the whole node, ZooKeeper included, inside a
// namespace of their own; this is how.
func TestInsideNetworkNamespace(t *testing.T) {
	name, _ := netnstest.New(t)
	dialIn := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netnstest.Run(name, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr) // the socket stays in the namespace
			return err
		})
		return c, err
	}
	srv := zktest.Start(t, zktest.CommandPrefix("ip", "netns", "exec", name), zktest.Dial(dialIn))
	out, err := srv.FourLetterWord(context.Background(), "srvr")
	if err != nil || !strings.Contains(string(out), "Mode: standalone") {
		t.Fatalf("srvr inside %s = %q, %v", name, out, err)
	}
	srv.Restart()
	if _, err := srv.FourLetterWord(context.Background(), "srvr"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
