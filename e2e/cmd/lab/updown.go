package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-dev/herald/e2e/controlplane"
	"github.com/herald-dev/herald/e2e/netlab"
)

// Files in StateDir.
const (
	pidFile    = "lab.pid"    // the background process's pid
	prefixFile = "prefix"     // the netlab prefix of the lab's namespaces
	logFile    = "lab.log"    // the background process's progress and errors
	reportFile = "report.txt" // written once the lab is up
	failedFile = "failed"     // written when bring-up failed
)

// bringUpTimeout bounds how long up waits for the background process.
const bringUpTimeout = 15 * time.Minute

func statePath(name string) string { return filepath.Join(StateDir, name) }

// up checks the machine (preflight: before it installs, builds or creates anything,
// so that a problem leaves the machine as it was), installs the missing Debian
// packages while it builds the missing control-plane binaries, starts the background
// process and prints its progress and report.
func up() error {
	p := preflight(inspectMachine())
	if len(p.Problems) > 0 {
		for _, problem := range p.Problems {
			fmt.Fprintln(os.Stderr, "lab: "+problem)
		}
		return errors.New("refusing to start the lab: nothing was changed")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if _, err := os.Stat(StateDir); err == nil {
		fmt.Println("lab: removing what a previous lab left behind")
		if err := down(); err != nil {
			return err
		}
	}
	if err := prepare(root, p, "etcd, kube-apiserver, kube-proxy and kubectl"); err != nil {
		return err
	}

	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", StateDir, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program: %w", err)
	}
	// A copy that outlives `go run`, which removes its build directory on exit.
	bin := statePath("herald-lab")
	if err := copyFile(self, bin); err != nil {
		return err
	}
	log, err := os.OpenFile(statePath(logFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create the lab's log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Dir = filepath.Join(root, "e2e")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "HERALD_LAB_ROOT="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this command and the terminal
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the lab's background process: %w", err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(statePath(pidFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the pid file: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	follow, err := os.Open(statePath(logFile))
	if err != nil {
		return err
	}
	defer follow.Close()
	progress := bufio.NewReader(follow)
	printNew := func() {
		for {
			line, err := progress.ReadString('\n')
			if line != "" && err == nil {
				fmt.Print(line)
				continue
			}
			if err == io.EOF && line != "" {
				// A partial line: read it again next time.
				_, _ = follow.Seek(-int64(len(line)), io.SeekCurrent)
				progress.Reset(follow)
			}
			return
		}
	}
	deadline := time.After(bringUpTimeout)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			printNew()
			fmt.Fprintf(os.Stderr, "lab: the background process exited (%v) before the lab was up\n", err)
			keepLogs()
			_ = down()
			return errors.New("the lab did not come up")
		case <-deadline:
			printNew()
			return fmt.Errorf("the lab was not up after %v; see %s, then run sudo make lab-down", bringUpTimeout, statePath(logFile))
		case <-tick.C:
			printNew()
			if _, err := os.Stat(statePath(failedFile)); err == nil {
				<-exited
				printNew()
				keepLogs()
				_ = down()
				return errors.New("the lab did not come up (see the messages above)")
			}
			if b, err := os.ReadFile(statePath(reportFile)); err == nil {
				printNew()
				fmt.Print(string(b))
				return nil
			}
		}
	}
}

// keepLogs copies the logs of a lab that failed to come up out of StateDir, which
// down removes, and says where.
func keepLogs() {
	dst := filepath.Join(os.TempDir(), "herald-lab-failed-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, name := range []string{logFile, "net", "controlplane/etcd.log", "controlplane/kube-apiserver.log"} {
		_ = exec.Command("cp", "-a", statePath(name), dst).Run()
	}
	fmt.Fprintf(os.Stderr, "lab: logs kept in %s\n", dst)
}

// down stops the background process (SIGTERM, which makes it tear the lab down; then
// SIGKILL), removes the lab's namespaces and anything running in them by prefix, kills
// by pid any process still using the control plane's directory (etcd, kube-apiserver),
// and removes the state directory. It is safe to run when no lab exists.
func down() error {
	if err := requireRoot("make lab-down"); err != nil {
		return err
	}
	var errs []error
	found := false
	if pid, ok := runningPid(); ok {
		found = true
		fmt.Printf("lab: stopping the lab (pid %d)\n", pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 60*time.Second) {
			fmt.Printf("lab: pid %d still runs after 60 s: killing it\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second)
		}
	}
	if b, err := os.ReadFile(statePath(prefixFile)); err == nil {
		found = true
		prefix := strings.TrimSpace(string(b))
		if err := netlab.Destroy(prefix); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range processesUsing(statePath("controlplane")) {
		found = true
		fmt.Printf("lab: killing leftover process %d\n", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
	if _, err := os.Stat(StateDir); err == nil {
		found = true
	}
	if err := os.RemoveAll(StateDir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", StateDir, err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if found {
		fmt.Println("lab: removed")
	} else {
		fmt.Println("lab: no lab to remove")
	}
	return nil
}

// runningPid returns the pid in the pid file when that process is alive.
func runningPid() (int, bool) {
	b, err := os.ReadFile(statePath(pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, alive(pid)
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	st, err := netlab.ReadProcStat(pid)
	return err == nil && st.State != 'Z'
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return !alive(pid)
}

// processesUsing returns the pids, other than this one, whose command line mentions
// dir (the control plane's etcd and kube-apiserver name their data and certificates
// there).
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if strings.Contains(arg, dir+"/") && alive(pid) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// repoRoot returns the repository's root: $HERALD_LAB_ROOT, or the first directory
// upwards from the working directory that holds e2e/go.mod and examples/.
func repoRoot() (string, error) {
	if r := os.Getenv("HERALD_LAB_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	for {
		if isFile(filepath.Join(dir, "e2e", "go.mod")) && isDir(filepath.Join(dir, "examples")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository: run the lab from Herald's repository (make lab)")
		}
		dir = parent
	}
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return os.Rename(tmp, dst)
}

// job is a command up runs while others run, its output lines prefixed with name.
type job struct {
	name string
	cmd  *exec.Cmd
}

// runParallel runs jobs at once in dir, printing their output as it comes, each line
// prefixed with its job's name, and returns their errors once all have ended.
func runParallel(dir string, jobs []job) error {
	var mu sync.Mutex
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		w := &linePrefixer{mu: &mu, prefix: "lab: " + j.name + ": ", out: os.Stdout}
		j.cmd.Dir, j.cmd.Stdout, j.cmd.Stderr = dir, w, w
		go func() {
			err := j.cmd.Run()
			w.flush()
			if err != nil {
				err = fmt.Errorf("%s: %s: %w", j.name, strings.Join(j.cmd.Args, " "), err)
			}
			errs <- err
		}()
	}
	var all []error
	for range jobs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// linePrefixer writes whole lines to out, each with prefix, one writer at a time.
type linePrefixer struct {
	mu     *sync.Mutex
	prefix string
	out    io.Writer
	buf    []byte
}

func (w *linePrefixer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *linePrefixer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf)
		w.buf = nil
	}
}

// prepare installs the Debian packages p names while it builds the binaries when p
// says so (what is built: for the message), then checks both are there.
func prepare(root string, p plan, what string) error {
	var jobs []job
	if len(p.Packages) > 0 {
		fmt.Printf("lab: installing Debian packages %s\n", strings.Join(p.Packages, " "))
		jobs = append(jobs, job{name: "deps", cmd: exec.Command("bash", filepath.Join(root, ".ci/install-deps"))})
	}
	if p.BuildBinaries {
		fmt.Println("lab: building " + what + " from source (once, into " +
			controlplane.BinDir() + "; about 15 minutes on 2 cores when Go's build cache is cold)")
		jobs = append(jobs, job{name: "build", cmd: exec.Command("bash", filepath.Join(root, "e2e/controlplane/build/build.sh"))})
	}
	if err := runParallel(root, jobs); err != nil {
		return err
	}
	if missing := missingCommands(); len(missing) > 0 {
		return fmt.Errorf("commands still not found after installing the Debian packages: %s", strings.Join(missing, ", "))
	}
	if _, err := controlplane.FindBinaries(""); err != nil {
		return err
	}
	return nil
}
