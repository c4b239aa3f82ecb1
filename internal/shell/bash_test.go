package shell

import "testing"

// The agent builds the executor's environment from scratch; a PATH may be
// missing (issue 9, point 5).
func TestFindBashWithoutPATH(t *testing.T) {
	t.Setenv("PATH", "")
	p, err := Bash()
	if err != nil {
		t.Fatal(err)
	}
	if p == "" {
		t.Fatal("no path to bash")
	}
}
