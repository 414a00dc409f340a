// compose-check loads Compose files with the Compose Specification's own loader
// (github.com/compose-spec/compose-go, the library `docker compose` itself is
// built on) and prints what it understood as JSON, so that the compose files can
// be checked on a machine without a Docker engine.
//
//	compose-check [--env NAME=VALUE]... [--env-file FILE]... [--os-env] [--dotenv] FILE...
//	compose-check --yaml FILE...    # any YAML file as JSON (Prometheus and Grafana configs)
//
// Each FILE is loaded on its own, as `docker compose -f FILE config` would:
// schema validation, interpolation, normalisation, paths resolved against the
// file's folder, and the consistency checks (unknown services in depends_on,
// undeclared volumes and secrets, ...). Strict on top of that: whatever the loader
// only warns about (a variable that is not set and becomes "", the obsolete
// `version:` attribute, a YAML 1.1 boolean) is an error here.
//
// The environment used for interpolation is only what --env and --env-file give,
// so a result does not depend on the shell it ran in; --os-env adds the process
// environment and --dotenv the .env file next to each compose file, as docker
// compose does.
//
// Output (stdout): {"files": [{"file", "ok", "error"?, "warnings"?, "project"?}]}.
// With --yaml: {"FILE": <its YAML document as JSON>, ...}, with the same YAML
// library the loader uses, so the tests need no YAML parser of their own.
// Exit status: 0 when every file loaded, 1 when one did not, 2 on bad arguments.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v4"
)

// warnings collects what the loader logs at warning level or above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (w *warnings) Fire(e *logrus.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, e.Message)
	return nil
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

type build struct {
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile"`
	Args       map[string]string `json:"args,omitempty"`
}

type healthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	StartPeriod string   `json:"start_period,omitempty"`
	Retries     uint64   `json:"retries,omitempty"`
	Disable     bool     `json:"disable,omitempty"`
}

type port struct {
	HostIP    string `json:"host_ip,omitempty"`
	Published string `json:"published,omitempty"`
	Target    uint32 `json:"target"`
	Protocol  string `json:"protocol,omitempty"`
}

type mount struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

type secretRef struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

type service struct {
	Image           string            `json:"image,omitempty"`
	Build           *build            `json:"build,omitempty"`
	Command         []string          `json:"command,omitempty"`
	Entrypoint      []string          `json:"entrypoint,omitempty"`
	WorkingDir      string            `json:"working_dir,omitempty"`
	User            string            `json:"user,omitempty"`
	Environment     map[string]string `json:"environment"`
	Healthcheck     *healthcheck      `json:"healthcheck,omitempty"`
	Ports           []port            `json:"ports"`
	Volumes         []mount           `json:"volumes"`
	Secrets         []secretRef       `json:"secrets"`
	DependsOn       map[string]string `json:"depends_on"`
	Restart         string            `json:"restart,omitempty"`
	StopGracePeriod string            `json:"stop_grace_period,omitempty"`
}

type project struct {
	Name     string             `json:"name"`
	Services map[string]service `json:"services"`
	Volumes  []string           `json:"volumes"`
	Secrets  map[string]string  `json:"secrets"`
}

type result struct {
	File     string   `json:"file"`
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Project  *project `json:"project,omitempty"`
}

func dur(d *types.Duration) string {
	if d == nil {
		return ""
	}
	return time.Duration(*d).String()
}

func summarize(p *types.Project) *project {
	out := &project{Name: p.Name, Services: map[string]service{}, Volumes: []string{}, Secrets: map[string]string{}}
	for name, s := range p.Services {
		svc := service{
			Image:       s.Image,
			Command:     s.Command,
			Entrypoint:  s.Entrypoint,
			WorkingDir:  s.WorkingDir,
			User:        s.User,
			Environment: map[string]string{},
			Ports:       []port{},
			Volumes:     []mount{},
			Secrets:     []secretRef{},
			DependsOn:   map[string]string{},
			Restart:     s.Restart,
		}
		svc.StopGracePeriod = dur(s.StopGracePeriod)
		if s.Build != nil {
			b := &build{Context: s.Build.Context, Dockerfile: s.Build.Dockerfile}
			if len(s.Build.Args) > 0 {
				b.Args = map[string]string{}
				for k, v := range s.Build.Args {
					if v != nil {
						b.Args[k] = *v
					}
				}
			}
			svc.Build = b
		}
		for k, v := range s.Environment {
			if v != nil {
				svc.Environment[k] = *v
			}
		}
		if h := s.HealthCheck; h != nil {
			hc := &healthcheck{Test: h.Test, Interval: dur(h.Interval), Timeout: dur(h.Timeout), StartPeriod: dur(h.StartPeriod), Disable: h.Disable}
			if h.Retries != nil {
				hc.Retries = *h.Retries
			}
			svc.Healthcheck = hc
		}
		for _, pc := range s.Ports {
			svc.Ports = append(svc.Ports, port{HostIP: pc.HostIP, Published: pc.Published, Target: pc.Target, Protocol: pc.Protocol})
		}
		for _, v := range s.Volumes {
			svc.Volumes = append(svc.Volumes, mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
		}
		for _, sr := range s.Secrets {
			target := sr.Target
			if target == "" {
				target = "/run/secrets/" + sr.Source
			} else if !strings.HasPrefix(target, "/") {
				target = "/run/secrets/" + target
			}
			svc.Secrets = append(svc.Secrets, secretRef{Source: sr.Source, Target: target})
		}
		for dep, d := range s.DependsOn {
			svc.DependsOn[dep] = d.Condition
		}
		out.Services[name] = svc
	}
	for name := range p.Volumes {
		out.Volumes = append(out.Volumes, name)
	}
	sort.Strings(out.Volumes)
	for name, s := range p.Secrets {
		out.Secrets[name] = s.File
	}
	return out
}

func load(ctx context.Context, file string, env map[string]string, useDotenv bool, w *warnings) result {
	abs, err := filepath.Abs(file)
	if err != nil {
		return result{File: file, Error: err.Error()}
	}
	dir := filepath.Dir(abs)
	fileEnv := map[string]string{}
	if useDotenv {
		if _, err := os.Stat(filepath.Join(dir, ".env")); err == nil {
			m, err := dotenv.GetEnvFromFile(env, []string{filepath.Join(dir, ".env")})
			if err != nil {
				return result{File: file, Error: err.Error()}
			}
			for k, v := range m {
				fileEnv[k] = v
			}
		}
	}
	for k, v := range env { // the explicit environment wins over .env, as in docker compose
		fileEnv[k] = v
	}
	list := make([]string, 0, len(fileEnv))
	for k, v := range fileEnv {
		list = append(list, k+"="+v)
	}
	w.take()
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(list),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return result{File: file, Error: err.Error()}
	}
	p, err := cli.ProjectFromOptions(ctx, opts)
	warns := w.take()
	if err != nil {
		return result{File: file, Error: err.Error(), Warnings: warns}
	}
	r := result{File: file, OK: len(warns) == 0, Warnings: warns, Project: summarize(p)}
	if !r.OK {
		r.Error = "strict: the loader warned: " + strings.Join(warns, "; ")
	}
	return r
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	var envs, envFiles, files multi
	osEnv, useDotenv, yamlMode := false, false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, bool) {
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "compose-check: %s needs a value\n", a)
				return "", false
			}
			i++
			return args[i], true
		}
		switch {
		case a == "--env" || a == "-e":
			v, ok := next()
			if !ok {
				return 2
			}
			envs = append(envs, v)
		case strings.HasPrefix(a, "--env="):
			envs = append(envs, strings.TrimPrefix(a, "--env="))
		case a == "--env-file":
			v, ok := next()
			if !ok {
				return 2
			}
			envFiles = append(envFiles, v)
		case strings.HasPrefix(a, "--env-file="):
			envFiles = append(envFiles, strings.TrimPrefix(a, "--env-file="))
		case a == "--os-env":
			osEnv = true
		case a == "--dotenv":
			useDotenv = true
		case a == "--yaml":
			yamlMode = true
		case a == "-h" || a == "--help":
			fmt.Fprintln(stdout, "usage: compose-check [--env NAME=VALUE]... [--env-file FILE]... [--os-env] [--dotenv] FILE...")
			fmt.Fprintln(stdout, "       compose-check --yaml FILE...")
			return 0
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(stderr, "compose-check: unknown option %s\n", a)
			return 2
		default:
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "compose-check: no compose file given")
		return 2
	}
	if yamlMode {
		return yamlToJSON(files, stdout, stderr)
	}
	env := map[string]string{}
	if osEnv {
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	for _, f := range envFiles {
		m, err := dotenv.GetEnvFromFile(env, []string{f})
		if err != nil {
			fmt.Fprintf(stderr, "compose-check: %s: %v\n", f, err)
			return 2
		}
		for k, v := range m {
			env[k] = v
		}
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "compose-check: --env %q is not NAME=VALUE\n", kv)
			return 2
		}
		env[k] = v
	}

	w := &warnings{}
	logrus.SetOutput(io.Discard) // reported in the JSON instead
	logrus.AddHook(w)
	ctx := context.Background()
	out := struct {
		Files []result `json:"files"`
	}{}
	status := 0
	for _, f := range files {
		r := load(ctx, f, env, useDotenv, w)
		if !r.OK {
			status = 1
			fmt.Fprintf(stderr, "compose-check: %s: %s\n", f, r.Error)
		}
		out.Files = append(out.Files, r)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "compose-check: %v\n", errors.Unwrap(err))
		return 1
	}
	return status
}

// yamlToJSON prints each YAML file (one document) as JSON, keyed by its name.
func yamlToJSON(files []string, stdout, stderr io.Writer) int {
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "compose-check: %v\n", err)
			return 1
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			fmt.Fprintf(stderr, "compose-check: %s: %v\n", f, err)
			return 1
		}
		out[f] = doc
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "compose-check: %v\n", err)
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
