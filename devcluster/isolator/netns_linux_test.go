package isolator

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dewarhq/dewar/internal/testenv"
)

// Creating a container's namespace must leave every thread of the process
// where it was. With GOMAXPROCS=1 the unsharing goroutine often runs on the
// main thread, which the runtime parks instead of ending: a main thread left
// inside would keep each removed namespace, and its veth, alive.
func TestCreateNetNSLeavesNoThreadInside(t *testing.T) {
	testenv.NeedRoot(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.LockOSThread()
	orig, err := os.Readlink("/proc/thread-self/ns/net")
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		path, err := createNetNS(netnsName("regress"))
		if err != nil {
			t.Fatalf("create #%d: %v", i, err)
		}
		if err := removeNetNS(path); err != nil {
			t.Fatalf("remove #%d: %v", i, err)
		}
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tasks {
		ns, err := os.Readlink(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		if ns != orig {
			t.Errorf("thread %s is in %s, not in the original %s", filepath.Base(filepath.Dir(filepath.Dir(p))), ns, orig)
		}
	}
}
