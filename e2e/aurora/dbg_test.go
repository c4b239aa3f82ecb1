package aurora_test
import "testing"
func dump(t *testing.T, tk *task) {
	for _, u := range tk.updates() { t.Logf("%v at %v recv %v: %s", u.GetState(), statusTime(u).Format("15:04:05.000"), u.received.Format("15:04:05.000"), u.GetMessage()) }
	t.Logf("executor log:\n%s", tk.executorLog())
}
