package taskrun

import (
	"slices"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dewarhq/dewar/aurora"
	"github.com/dewarhq/dewar/executor"
	"github.com/dewarhq/dewar/health"
	"github.com/dewarhq/dewar/sandbox"
)

// TestContainerize: the AssignedTask's container decides how the
// processes run, as Thermos' DefaultSandboxProvider: on the host as the
// role, in a Docker container as the container's user, or inside the
// Mesos filesystem image at $MESOS_DIRECTORY/taskfs.
func TestContainerize(t *testing.T) {
	image := &aurora.Container{Mesos: &aurora.MesosContainer{Image: &aurora.Image{Docker: &aurora.DockerImage{Name: "debian", Tag: "jessie"}}}}
	for _, tc := range []struct {
		name      string
		container *aurora.Container
		wantUser  string
		wantImage bool
	}{
		{"no container", nil, "www", false},
		{"mesos without image", &aurora.Container{Mesos: &aurora.MesosContainer{}}, "www", false},
		{"docker", &aurora.Container{Docker: &aurora.DockerContainer{Image: "python:2.7"}}, "", false},
		{"mesos image", image, "www", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := &task{
				opt: Options{Container: ContainerOptions{MesosContainerizerPath: "/usr/libexec/mesos/mesos-containerizer", NoCreateUser: true}},
				env: executor.LaunchEnv{
					Config: executor.Config{Directory: "/var/lib/mesos/run", Sandbox: "/var/lib/mesos/run"},
					Executor: mesos.ExecutorInfo{Container: &mesos.ContainerInfo{Volumes: []mesos.Volume{
						{ContainerPath: "taskfs"}, {ContainerPath: "/etc/secrets"}}}},
				},
			}
			p := &taskSpec{assigned: &aurora.AssignedTask{Task: aurora.TaskConfig{Container: tc.container}}}
			opt := sandbox.Options{User: "www", Env: []string{"PATH=/bin", "MESOS_SANDBOX=/var/lib/mesos/run"}}
			if err := tk.containerize(p, &opt); err != nil {
				t.Fatal(err)
			}
			if opt.User != tc.wantUser {
				t.Errorf("user %q, want %q", opt.User, tc.wantUser)
			}
			if (opt.Image != nil) != tc.wantImage {
				t.Fatalf("image %+v, want one: %t", opt.Image, tc.wantImage)
			}
			if im := opt.Image; im != nil {
				if im.RootFS != "/var/lib/mesos/run/taskfs" || im.MountPoint != sandbox.DefaultMountPoint ||
					im.Containerizer != "/usr/libexec/mesos/mesos-containerizer" || !im.NoCreateUser ||
					!slices.Equal(im.Volumes, []string{"taskfs", "/etc/secrets"}) {
					t.Errorf("image %+v", im)
				}
				if !slices.Equal(opt.Env, []string{"PATH=/bin", "MESOS_SANDBOX=" + sandbox.DefaultMountPoint}) {
					t.Errorf("environment %q: want MESOS_SANDBOX where the image sees the sandbox", opt.Env)
				}
				var hopt health.Options
				imageHealth(opt, "www", &hopt)
				if hopt.Wrap == nil || hopt.SysProcAttr != nil {
					t.Fatalf("health options %+v: want a wrapped check with no setuid", hopt)
				}
				if argv := hopt.Wrap("true"); argv[0] != im.Containerizer {
					t.Errorf("health check argv %q does not go through the launcher", argv)
				}
			}
		})
	}
}
