package observer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dewarhq/dewar/internal/testenv"
)

// TestBrowser walks the observer as a person would, in real headless
// Chromium (Debian's chromium, installed by `make deps`): the task list, a
// two-network task's page, a process page and a log tail. Every address of
// every network must be on the task page. Screenshots go to the test's
// artifact directory (go test -artifacts keeps them).
func TestBrowser(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "needs Debian's chromium for the browser test; `make deps` installs it")
	}
	f := newFixture(t)
	// The agent's own account of t-two's addresses, as a Mesos agent
	// checkpoints it: the same addresses the executor found.
	agentView := map[string][]string{}
	for _, n := range twoNetworks {
		for _, a := range n.Addresses {
			agentView[n.Name] = append(agentView[n.Name], strings.Split(a, "/")[0])
		}
	}
	writeAgentStream(t, f.run, "t-two", agentView, agentView)
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)

	// NewExecAllocator adds chromedp's defaults (headless, no background
	// networking, ...) to these.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)

	// visit waits for sel on the page reached by actions, screenshots it
	// and returns sel's text.
	visit := func(name, sel string, actions ...chromedp.Action[chromedp.Void]) string {
		t.Helper()
		actions = append(actions, chromedp.WaitVisible(chromedp.CSS(sel)))
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: text of %s: %v", name, sel, err)
		}
		return text
	}
	list := visit("1-list", "#tasks", chromedp.Navigate(f.http.URL+"/"))
	networksText := visit("2-task", "#networks", chromedp.Click(chromedp.CSS(`a[href="/task/t-two"]`)))
	task, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	agentText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#agent-networks")))
	if err != nil {
		t.Fatal(err)
	}
	for name, addrs := range agentView {
		for _, a := range addrs {
			if !strings.Contains(agentText, a) {
				t.Errorf("the agent's address %s of %s is not on the task page:\n%s", a, name, agentText)
			}
		}
	}
	if !strings.Contains(task, "agree with the executor") {
		t.Errorf("the task page does not say the agent's and the executor's addresses agree")
	}
	process := visit("3-process", "#runs", chromedp.Click(chromedp.CSS(`#processes a[href="/process/t-two/web"]`)))
	logText := visit("4-log", "#log", chromedp.Click(chromedp.CSS(`#runs a[href="/logs/t-two/web/1/stdout"]`)))
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}

	if !strings.Contains(list, "t-two") || !strings.Contains(list, "2001:db8:2::7") {
		t.Errorf("task list as shown:\n%s", list)
	}
	for _, n := range twoNetworks {
		for _, a := range n.Addresses {
			if !strings.Contains(networksText, a) {
				t.Errorf("address %s of network %s is not on the task page:\n%s", a, n.Name, networksText)
			}
		}
		if !strings.Contains(networksText, n.Name) || !strings.Contains(networksText, n.Interface) {
			t.Errorf("network %s (%s) is not on the task page", n.Name, n.Interface)
		}
	}
	for _, want := range []string{"http [2001:db8:1::2]:31000", "health 198.19.0.7:31001", "/aurora/www/prod/hello@green", "HEALTHY"} {
		if !strings.Contains(task, want) {
			t.Errorf("task page lacks %q", want)
		}
	}
	if !strings.Contains(process, "exit status 1") || !strings.Contains(process, "1002") {
		t.Errorf("process page as shown:\n%s", process)
	}
	if !strings.Contains(logText, "serving on 198.18.0.2:31000") || !strings.HasPrefix(title, "stdout") {
		t.Errorf("log page %q shows:\n%s", title, logText)
	}
	for _, name := range []string{"1-list.png", "2-task.png", "3-process.png", "4-log.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
