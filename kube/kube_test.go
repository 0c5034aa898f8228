package kube

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/mqbench/mqbench/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func persist3s(t *testing.T) Options {
	t.Helper()
	data, _, err := scenarios.Source("persist-3s")
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Scenario: data, ScenarioName: "persist-3s", Shards: 4,
		Broker: "tcp://broker.mqtt.svc:1883", Image: "registry.example/mqbench:v1",
		StartAt: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), PVC: "mqbench-runs",
		Args: []string{"--set", "duration=30s"},
	}
}

// The manifests for persist-3s on 4 shards, byte for byte: a change to what
// `mqbench kube` prints shows up here as a diff to review.
func TestGolden(t *testing.T) {
	m, err := Build(persist3s(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "persist-3s-4-shards.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("mqbench kube output differs from %s (go test ./kube -update to accept):\n%s", golden, got)
	}
}

// Every document decodes strictly into the official API type (an unknown or
// misspelt field is an error), and the decoded Job is what an Indexed Job of N
// shards needs: completion mode, completions = parallelism = N, no retries,
// the index reaching the container, the scenario mounted where the args say.
func TestManifestsDecodeStrictly(t *testing.T) {
	m, err := Build(persist3s(t))
	if err != nil {
		t.Fatal(err)
	}
	y, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(y), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents, want ConfigMap and Job", len(docs))
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &cm); err != nil {
		t.Fatalf("ConfigMap: %v", err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &job); err != nil {
		t.Fatalf("Job: %v", err)
	}
	if cm.Kind != "ConfigMap" || job.Kind != "Job" || job.APIVersion != "batch/v1" {
		t.Fatalf("kinds %s %s/%s", cm.Kind, job.APIVersion, job.Kind)
	}
	sc, err := scenarios.Parse([]byte(cm.Data[ScenarioFile]), ScenarioFile)
	if err != nil || sc.Name != "persist-3s" {
		t.Fatalf("the ConfigMap's scenario does not parse back: %v", err)
	}
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || *s.Completions != 4 || s.Parallelism == nil || *s.Parallelism != 4 {
		t.Errorf("completions %v parallelism %v, want 4 and 4", s.Completions, s.Parallelism)
	}
	if s.BackoffLimit == nil || *s.BackoffLimit != 0 {
		t.Errorf("backoffLimit %v, want 0: a retried shard publishes its share twice", s.BackoffLimit)
	}
	pod := s.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || len(pod.Containers) != 1 {
		t.Fatalf("restartPolicy %q, %d containers", pod.RestartPolicy, len(pod.Containers))
	}
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{
		"run /scenario/scenario.yaml", "--broker tcp://broker.mqtt.svc:1883", "--shard-from-env 4",
		"--start-at 2026-12-01T22:00:00Z", "--out /runs/mqbench-persist-3s/shard-$(JOB_COMPLETION_INDEX)",
		"--set duration=30s",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("container args %q lack %q", args, want)
		}
	}
	if len(c.Env) != 1 || c.Env[0].Name != IndexEnv || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef == nil ||
		c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("the completion index does not reach the container as $(%s): %+v", IndexEnv, c.Env)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if v := vols["scenario"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("scenario volume %+v does not mount ConfigMap %s", v, cm.Name)
	}
	if v := vols["runs"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "mqbench-runs" {
		t.Errorf("runs volume %+v is not the PVC", v)
	}
}

func TestBuildRefuses(t *testing.T) {
	base := persist3s(t)
	for name, tc := range map[string]struct {
		edit func(*Options)
		want string
	}{
		"bundled broker": {func(o *Options) { o.Broker = "bundled" }, "pods need an address"},
		"no shards":      {func(o *Options) { o.Shards = 0 }, "shards 0"},
		"too many":       {func(o *Options) { o.Shards = scenarios.MaxShards + 1 }, "shards 1001"},
		"bad name":       {func(o *Options) { o.Name = "Persist_3s" }, "job name"},
		"no image":       {func(o *Options) { o.Image = "" }, "image"},
		"no start":       {func(o *Options) { o.StartAt = time.Time{} }, "start time"},
		"huge scenario":  {func(o *Options) { o.Scenario = bytes.Repeat([]byte("#"), MaxScenarioBytes+1) }, "more than a ConfigMap holds"},
		"bad namespace":  {func(o *Options) { o.Namespace = "a.b" }, "namespace"},
	} {
		o := base
		tc.edit(&o)
		if _, err := Build(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Build = %v, want an error with %q", name, err, tc.want)
		}
	}
	o := base
	o.PVC = ""
	m, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.Job.Spec.Template.Spec.Volumes {
		if v.Name == "runs" && v.EmptyDir == nil {
			t.Errorf("without a PVC the runs volume is %+v, want an emptyDir", v)
		}
	}
}

func TestDNSLabel(t *testing.T) {
	for in, want := range map[string]string{
		"persist-3s": "persist-3s", "Throughput QoS2": "throughput-qos2", "__x__": "x", "": "run",
		strings.Repeat("a", 60): strings.Repeat("a", 40),
	} {
		if got := dnsLabel(in); got != want {
			t.Errorf("dnsLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
