package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqbench/mqbench/kube"
	"github.com/mqbench/mqbench/scenarios"
)

var kubeFlags struct {
	shards    int
	broker    string
	image     string
	name      string
	namespace string
	pvc       string
	startAt   string
	startIn   time.Duration
	sets      []string
}

var kubeCmd = &cobra.Command{
	Use:   "kube SCENARIO --shards N --broker URL",
	Short: "Print Kubernetes manifests that run a scenario split across N pods",
	Long: `Print a ConfigMap holding the scenario and an Indexed Job (completionMode
Indexed, parallelism N) whose pod k runs shard k+1 of N against --broker, every
pod releasing its publishers at the same wall-clock instant (--start-at, or now
plus --start-in). Apply them with:

  mqbench kube persist-3s --shards 4 --broker tcp://broker:1883 --pvc mqbench-runs | kubectl apply -f -

Each pod writes its run directory to /runs/JOB/shard-K on the PVC (an existing
ReadWriteMany claim; without --pvc the runs are lost with the pods). Collect
them and merge: see docs/distributed.md.`,
	Args:              cobra.ExactArgs(1),
	RunE:              runKube,
	ValidArgsFunction: completeScenarios,
}

func init() {
	f := kubeCmd.Flags()
	f.IntVar(&kubeFlags.shards, "shards", 0, "number of pods the scenario is split across (required)")
	f.StringVar(&kubeFlags.broker, "broker", "", "broker address the pods reach: tcp://HOST:PORT, mqtts://, ws://, wss:// (required)")
	f.StringVar(&kubeFlags.image, "image", "mqbench:"+version, "mqbench container image (build it from the Dockerfile)")
	f.StringVar(&kubeFlags.name, "name", "", "Job name (default mqbench-<scenario>)")
	f.StringVar(&kubeFlags.namespace, "namespace", "", "namespace of the objects (default: kubectl's)")
	f.StringVar(&kubeFlags.pvc, "pvc", "", "existing ReadWriteMany PersistentVolumeClaim for the run directories")
	f.StringVar(&kubeFlags.startAt, "start-at", "", "when all shards release their publishers (RFC 3339, e.g. 2026-12-01T22:00:00Z)")
	f.DurationVar(&kubeFlags.startIn, "start-in", 2*time.Minute, "without --start-at: start this long from now (time for the pods to be scheduled and connect)")
	f.StringArrayVar(&kubeFlags.sets, "set", nil, "passed to every pod's mqbench run: KEY=VALUE (repeatable)")
	_ = kubeCmd.MarkFlagRequired("shards")
	_ = kubeCmd.MarkFlagRequired("broker")
	rootCmd.AddCommand(kubeCmd)
}

func runKube(cmd *cobra.Command, args []string) error {
	// Load first: a scenario that does not validate here fails in every pod.
	sc, err := scenarios.Load(args[0], kubeFlags.sets)
	if err != nil {
		return err
	}
	data, _, err := scenarios.Source(args[0])
	if err != nil {
		return err
	}
	start := time.Now().Add(kubeFlags.startIn).Truncate(time.Second)
	if kubeFlags.startAt != "" {
		if start, err = time.Parse(time.RFC3339, kubeFlags.startAt); err != nil {
			return fmt.Errorf("--start-at %q: want RFC 3339, e.g. 2026-12-01T22:00:00Z", kubeFlags.startAt)
		}
	}
	var extra []string
	for _, kv := range kubeFlags.sets {
		extra = append(extra, "--set", kv)
	}
	m, err := kube.Build(kube.Options{
		Name: kubeFlags.name, Scenario: data, ScenarioName: sc.Name, Shards: kubeFlags.shards,
		Broker: kubeFlags.broker, Image: kubeFlags.image, StartAt: start,
		Namespace: kubeFlags.namespace, PVC: kubeFlags.pvc, Args: extra,
	})
	if err != nil {
		return err
	}
	y, err := m.YAML()
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(y)
	return err
}
