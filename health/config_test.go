package health

import (
	"strings"
	"testing"
	"time"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/pystachio"
)

func TestFromJob(t *testing.T) {
	hc := aurora.DefaultHealthCheckConfig()
	c, mc, err := FromJob(hc, Options{Ports: map[string]int{"http": 80}, Sandbox: "/sb"})
	if err != nil || c != nil {
		t.Fatalf("HTTP check without a health port: got %v, %v; want no checker", c, err)
	}
	if mc.InitialInterval != 15*time.Second || mc.Interval != 10*time.Second || mc.MinConsecutiveSuccesses != 1 || mc.SnoozePath != "/sb/.healthchecksnooze" {
		t.Errorf("monitor config %+v", mc)
	}
	c, _, err = FromJob(hc, Options{Ports: map[string]int{"health": 8081}})
	if err != nil {
		t.Fatal(err)
	}
	h, ok := c.(*HTTPChecker)
	if !ok || h.Port != 8081 || h.Endpoint != "/health" || h.ExpectedResponse != "ok" || h.Timeout != time.Second {
		t.Errorf("checker %+v", c)
	}

	hc.HealthChecker = aurora.HealthChecker{Shell: &aurora.ShellHealthChecker{ShellCommand: "curl -f localhost:{{thermos.ports[http]}}"}}
	scope := pystachio.Scope{"thermos.ports[http]": "80"}
	render := func(s string) (string, error) { return pystachio.Render(s, scope) }
	c, _, err = FromJob(hc, Options{Render: render})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := c.(*ShellChecker); !ok || s.Command != "curl -f localhost:80" {
		t.Errorf("checker %+v", c)
	}
	hc.HealthChecker.Shell.ShellCommand = "{{thermos.ports[admin]}}"
	_, _, err = FromJob(hc, Options{Render: render})
	if err == nil || !strings.Contains(err.Error(), "shell_command") || !strings.Contains(err.Error(), "admin") {
		t.Errorf("got %v, want an error naming the field and the variable", err)
	}
}

func TestShutdownFromJob(t *testing.T) {
	lc := aurora.DefaultLifecycle()
	if _, _, ok := ShutdownFromJob(lc, map[string]int{"http": 80}); ok {
		t.Error("lifecycle without a health port: want none")
	}
	if _, _, ok := ShutdownFromJob(aurora.LifecycleConfig{}, map[string]int{"health": 80}); ok {
		t.Error("disabled lifecycle: want none")
	}
	port, cfg, ok := ShutdownFromJob(lc, map[string]int{"health": 8081})
	want := ShutdownConfig{"/quitquitquit", 5 * time.Second, "/abortabortabort", 5 * time.Second}
	if !ok || port != 8081 || cfg != want {
		t.Errorf("got %d %+v %v, want 8081 %+v", port, cfg, ok, want)
	}
}
