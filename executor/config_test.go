package executor

import (
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	full := map[string]string{
		"MESOS_FRAMEWORK_ID":                   "fw-1",
		"MESOS_EXECUTOR_ID":                    "ex-1",
		"MESOS_AGENT_ENDPOINT":                 "127.0.0.1:5051",
		"MESOS_DIRECTORY":                      "/var/sandbox",
		"MESOS_SANDBOX":                        "/mnt/mesos/sandbox",
		"MESOS_CHECKPOINT":                     "1",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "7secs",
		"MESOS_RECOVERY_TIMEOUT":               "15mins",
		"MESOS_SUBSCRIPTION_BACKOFF_MAX":       "500ms",
		"MESOS_EXECUTOR_AUTHENTICATION_TOKEN":  "s3cr3t",
		"MESOS_DOMAIN_SOCKET":                  "/run/agent.sock",
		"MESOS_SLAVE_PID":                      "slave(1)@127.0.0.1:5051",
	}
	c, err := ConfigFromEnv(envOf(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.FrameworkID != "fw-1" || c.ExecutorID != "ex-1" || c.AgentEndpoint != "127.0.0.1:5051" ||
		c.Sandbox != "/mnt/mesos/sandbox" || !c.Checkpoint || c.ShutdownGracePeriod != 7*time.Second ||
		c.RecoveryTimeout != 15*time.Minute || c.SubscriptionBackoffMax != 500*time.Millisecond ||
		c.AuthToken != "s3cr3t" || c.DomainSocket != "/run/agent.sock" {
		t.Fatalf("config = %+v", c)
	}
	if strings.Contains(c.String(), "s3cr3t") {
		t.Fatalf("String() leaks the token: %s", c)
	}

	t.Run("missing variables are named", func(t *testing.T) {
		_, err := ConfigFromEnv(envOf(map[string]string{"MESOS_FRAMEWORK_ID": "fw"}))
		if err == nil {
			t.Fatal("want error")
		}
		for _, v := range []string{"MESOS_EXECUTOR_ID", "MESOS_DIRECTORY", "MESOS_AGENT_ENDPOINT"} {
			if !strings.Contains(err.Error(), v) {
				t.Errorf("error %q does not name %s", err, v)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		m := map[string]string{"MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e", "MESOS_AGENT_ENDPOINT": "h:1", "MESOS_DIRECTORY": "/d"}
		c, err := ConfigFromEnv(envOf(m))
		if err != nil {
			t.Fatal(err)
		}
		if c.Sandbox != "/d" || c.Checkpoint || c.ShutdownGracePeriod != DefaultShutdownGracePeriod ||
			c.RecoveryTimeout != DefaultRecoveryTimeout || c.SubscriptionBackoffMax != DefaultSubscriptionBackoffMax {
			t.Fatalf("defaults = %+v", c)
		}
	})
	t.Run("bad duration is named", func(t *testing.T) {
		m := map[string]string{"MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e", "MESOS_AGENT_ENDPOINT": "h:1", "MESOS_DIRECTORY": "/d",
			"MESOS_RECOVERY_TIMEOUT": "soon"}
		_, err := ConfigFromEnv(envOf(m))
		if err == nil || !strings.Contains(err.Error(), "MESOS_RECOVERY_TIMEOUT") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAgentAddressing(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e", "MESOS_DIRECTORY": "/d"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string
		endpoint  string
		path      string
		errSubstr string
	}{
		{name: "ipv4", env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "10.0.0.5:5051"}),
			endpoint: "10.0.0.5:5051", path: "/api/v1/executor"},
		{name: "ipv6 as the agent prints it, without brackets",
			env:      base(map[string]string{"MESOS_AGENT_ENDPOINT": "2001:db8::5:5051"}),
			endpoint: "[2001:db8::5]:5051", path: "/api/v1/executor"},
		{name: "ipv6 loopback", env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "::1:5051"}),
			endpoint: "[::1]:5051", path: "/api/v1/executor"},
		{name: "bracketed ipv6 kept", env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "[::1]:5051"}),
			endpoint: "[::1]:5051", path: "/api/v1/executor"},
		{name: "socket uses the pid-prefixed path",
			env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "10.0.0.5:5051", "MESOS_DOMAIN_SOCKET": "/var/run/mesos/agent.sock",
				"MESOS_SLAVE_PID": "slave(1)@10.0.0.5:5051"}),
			endpoint: "10.0.0.5:5051", path: "/slave(1)/api/v1/executor"},
		{name: "socket without MESOS_SLAVE_PID",
			env:       base(map[string]string{"MESOS_AGENT_ENDPOINT": "10.0.0.5:5051", "MESOS_DOMAIN_SOCKET": "/s"}),
			errSubstr: "MESOS_SLAVE_PID"},
		{name: "malformed MESOS_SLAVE_PID",
			env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "10.0.0.5:5051", "MESOS_DOMAIN_SOCKET": "/s",
				"MESOS_SLAVE_PID": "10.0.0.5:5051"}),
			errSubstr: "id@host:port"},
		{name: "endpoint without a port", env: base(map[string]string{"MESOS_AGENT_ENDPOINT": "agent.example"}),
			errSubstr: "host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ConfigFromEnv(envOf(tc.env))
			if tc.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AgentEndpoint != tc.endpoint || c.ExecutorPath() != tc.path {
				t.Fatalf("endpoint %q path %q, want %q %q", c.AgentEndpoint, c.ExecutorPath(), tc.endpoint, tc.path)
			}
		})
	}
}

func TestParseMesosDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5secs", 5 * time.Second, true},
		{"1.5mins", 90 * time.Second, true},
		{"100ms", 100 * time.Millisecond, true},
		{"2hrs", 2 * time.Hour, true},
		{"1days", 24 * time.Hour, true},
		{"1weeks", 7 * 24 * time.Hour, true},
		{"10us", 10 * time.Microsecond, true},
		{"3ns", 3, true},
		{"5s", 0, false},
		{"secs", 0, false},
		{"-1secs", 0, false},
		{"", 0, false},
	} {
		got, err := ParseMesosDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMesosDuration(%q) = %v, %v; want %v ok=%t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
