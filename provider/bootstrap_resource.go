package provider

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	tfpath "github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

var (
	_ resource.Resource                   = &bootstrapResource{}
	_ resource.ResourceWithValidateConfig = &bootstrapResource{}
	_ resource.ResourceWithModifyPlan     = &bootstrapResource{}
	_ resource.ResourceWithImportState    = &bootstrapResource{}
)

// recordTimeout bounds reading the bootstrap record, so that a plan against a cluster that is
// down warns after seconds rather than hanging.
const recordTimeout = 15 * time.Second

// recordName names the record in messages.
var recordName = "ConfigMap " + hostagent.Namespace + "/" + generator.PivotRecord

// bootstrapResource is liftoff_bootstrap: bootstrap.Run on create and update, the cluster's
// bootstrap record on read.
type bootstrapResource struct{}

func (r *bootstrapResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_bootstrap"
}

func (r *bootstrapResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = bootstrapSchema()
}

// ValidateConfig checks that timeout is a duration.
func (r *bootstrapResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var timeout types.String
	if resp.Diagnostics.Append(req.Config.GetAttribute(ctx, tfpath.Root("timeout"), &timeout)...); resp.Diagnostics.HasError() {
		return
	}
	if _, err := parseTimeout(timeout); err != nil {
		resp.Diagnostics.AddAttributeError(tfpath.Root("timeout"), "Invalid timeout", err.Error())
	}
}

// parseTimeout reads timeout; zero (bootstrap.DefaultTimeout) when it is not set or not yet known.
func parseTimeout(v types.String) (time.Duration, error) {
	if v.IsNull() || v.IsUnknown() {
		return 0, nil
	}
	d, err := time.ParseDuration(v.ValueString())
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("timeout is %q: want a positive duration like \"30m\" or \"1h30m\"", v.ValueString())
	}
	return d, nil
}

// ModifyPlan decides whether an update runs bootstrap. It does when the manifests change, and when
// the cluster's record says its bootstrap did not complete, so that a failed or interrupted run, by
// this provider or the CLI, converges on the next apply. A change of timeout or kubeconfig alone
// only steers later runs: the plan keeps the record as it is.
func (r *bootstrapResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || req.State.Raw.IsNull() {
		return // destroying or creating
	}
	var state, plan bootstrapModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	incomplete := state.Status.ValueString() != bootstrap.StatusComplete
	if !incomplete && plan.Dir.Equal(state.Dir) && plan.Manifests.Equal(state.Manifests) {
		plan.bootstrapRecord = state.bootstrapRecord
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if incomplete {
		resp.Diagnostics.AddWarning("Bootstrap is not complete",
			fmt.Sprintf("The cluster's bootstrap is %q, as %s last said; this apply runs bootstrap again, which "+
				"resumes where it stopped.", state.Status.ValueString(), recordName))
	}
	plan.bootstrapRecord = unknownRecord()
	// Left out of the configuration, manifests records what this apply bootstraps with.
	var configured types.Map
	if resp.Diagnostics.Append(req.Config.GetAttribute(ctx, tfpath.Root("manifests"), &configured)...); configured.IsNull() {
		plan.Manifests = types.MapUnknown(types.StringType)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// Create bootstraps the cluster. A run that fails still leaves the stages it recorded in state.
func (r *bootstrapResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan bootstrapModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	plan.ID = plan.Dir
	recorded, diags := runBootstrap(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if recorded {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
}

// Update runs bootstrap again when the plan left the record to it (see ModifyPlan): bootstrap
// applies only what changed, and on a cluster already bootstrapped with these manifests it returns
// at once.
func (r *bootstrapResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan bootstrapModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	if !plan.Status.IsUnknown() {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	recorded, diags := runBootstrap(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if recorded {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
}

// runBootstrap runs bootstrap.Run with m's arguments and fills m's record. It says whether there
// is a record to save: a run that failed before it started any stage (an unreadable output
// directory or kubeconfig) leaves none.
func runBootstrap(ctx context.Context, m *bootstrapModel) (bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	timeout, err := parseTimeout(m.Timeout)
	if err != nil {
		diags.AddAttributeError(tfpath.Root("timeout"), "Invalid timeout", err.Error())
		return false, diags
	}
	dir := absolute(m.Dir.ValueString())
	opts := bootstrap.Options{Dir: dir, Kubeconfig: m.kubeconfig(), Timeout: timeout, Progress: func(e bootstrap.Event) {
		fields := map[string]any{"stage": string(e.Stage), "result": e.Result, "elapsed": e.Elapsed.String()}
		for k, v := range map[string]string{"object": e.Object, "file": e.File, "detail": e.Detail} {
			if v != "" {
				fields[k] = v
			}
		}
		tflog.Info(ctx, "bootstrap", fields)
	}}
	report, runErr := bootstrap.Run(ctx, opts)
	if report == nil {
		diags.AddError("Cannot bootstrap the cluster", runErr.Error())
		return false, diags
	}
	// A run that succeeded leaves state as later reads will find it: what the cluster's record says,
	// which for a cluster already bootstrapped is the run that did it. A run that failed says so
	// itself, since its record may not have been written.
	rec := recordOfReport(report, runErr)
	if runErr == nil {
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		if cluster, err := readRecord(rctx, m.kubeconfig()); err == nil && cluster != nil {
			rec = cluster
		}
		cancel()
	}
	var d diag.Diagnostics
	m.bootstrapRecord, d = recordValue(rec)
	diags.Append(d...)
	if m.Manifests.IsUnknown() {
		m.Manifests, d = manifestDigests(dir)
		diags.Append(d...)
	}
	if runErr != nil {
		stage := "bootstrap"
		for _, s := range report.Stages {
			if s.Result == bootstrap.ResultFailed {
				stage = "stage " + string(s.Stage)
			}
		}
		what := "Bootstrap failed in "
		if ctx.Err() != nil {
			what = "Bootstrap interrupted in " // Terraform was stopped
		}
		diags.AddError(what+stage,
			fmt.Sprintf("%v\n\nThe stages recorded so far are in state. Apply again to resume: bootstrap converges "+
				"from wherever this run stopped.", runErr))
	}
	return true, diags
}

// recordOfReport is the record a run writes, as its report has it.
func recordOfReport(report *bootstrap.Report, err error) *bootstrap.Record {
	rec := &bootstrap.Record{Mode: report.Mode, Status: bootstrap.StatusComplete, Stages: report.Stages}
	if err != nil {
		rec.Status = bootstrap.StatusFailed
	} else if !report.AlreadyBootstrapped {
		rec.Completed = &report.End
	}
	if report.Handover.Requests > 0 {
		rec.Handover = &report.Handover
	}
	return rec
}

// Read reports the cluster's bootstrap record. A cluster that cannot be reached keeps the state it
// had, with a warning; a cluster without a record was rebuilt, and the resource leaves state so the
// next apply bootstraps it.
func (r *bootstrapResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state bootstrapModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); resp.Diagnostics.HasError() {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rec, err := readRecord(rctx, state.kubeconfig())
	if err != nil {
		resp.Diagnostics.AddWarning("Cannot read the cluster's bootstrap record",
			fmt.Sprintf("%v\n\nliftoff_bootstrap keeps what it last knew of %s; the next plan reads it again.", err, state.Dir.ValueString()))
		return
	}
	if rec == nil {
		tflog.Info(ctx, "the cluster has no bootstrap record: it was rebuilt", map[string]any{"dir": state.Dir.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	var d diag.Diagnostics
	state.bootstrapRecord, d = recordValue(rec)
	if resp.Diagnostics.Append(d...); d.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Delete leaves the cluster as it is, and says so: bootstrap cannot be undone short of rebuilding
// the machines.
func (r *bootstrapResource) Delete(_ context.Context, _ resource.DeleteRequest, resp *resource.DeleteResponse) {
	resp.Diagnostics.AddWarning("The cluster keeps running", fmt.Sprintf("Destroying liftoff_bootstrap only removes it "+
		"from Terraform state. Bootstrap is not undone: the cluster, its control plane and its record (%s) stay as "+
		"they are. Remove the machines to remove the cluster.", recordName))
}

// ImportState adopts a bootstrapped cluster: the import ID is its output directory, whose admin
// kubeconfig reaches the API where the record is read.
func (r *bootstrapResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	m := bootstrapModel{ID: types.StringValue(req.ID), Dir: types.StringValue(req.ID),
		Kubeconfig: types.StringNull(), Timeout: types.StringNull()}
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rec, err := readRecord(rctx, m.kubeconfig())
	if err != nil {
		resp.Diagnostics.AddError("Cannot import the cluster's bootstrap",
			fmt.Sprintf("The import ID is the cluster's output directory; its record (%s) could not be read: %v", recordName, err))
		return
	}
	if rec == nil {
		resp.Diagnostics.AddError("The cluster has not been bootstrapped",
			fmt.Sprintf("The cluster of %s has no bootstrap record (%s), so there is nothing to import. Remove the import "+
				"and apply: liftoff_bootstrap then bootstraps the cluster.", req.ID, recordName))
		return
	}
	var d diag.Diagnostics
	m.bootstrapRecord, d = recordValue(rec)
	resp.Diagnostics.Append(d...)
	m.Manifests, d = manifestDigests(absolute(req.ID))
	if resp.Diagnostics.Append(d...); resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// kubeconfig is the kubeconfig bootstrap uses.
func (m *bootstrapModel) kubeconfig() string {
	if k := m.Kubeconfig.ValueString(); k != "" {
		return absolute(k)
	}
	return filepath.Join(absolute(m.Dir.ValueString()), bootstrap.AdminKubeconfig)
}

// readRecord reads the cluster's bootstrap record through the API; nil, nil when it has none.
func readRecord(ctx context.Context, kubeconfig string) (*bootstrap.Record, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = recordTimeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	rec, err := bootstrap.ReadRecord(ctx, client)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", recordName, cfg.Host, err)
	}
	return rec, nil
}

// recordValue turns a record into attribute values.
func recordValue(rec *bootstrap.Record) (bootstrapRecord, diag.Diagnostics) {
	var diags diag.Diagnostics
	out := bootstrapRecord{
		Mode:      types.StringValue(string(rec.Mode)),
		Status:    types.StringValue(rec.Status),
		Completed: timeValue(rec.Completed),
		Handover:  types.ObjectNull(handoverType.AttrTypes),
	}
	stages := make([]attr.Value, 0, len(rec.Stages))
	for _, s := range rec.Stages {
		detail := types.StringNull()
		if s.Detail != "" {
			detail = types.StringValue(s.Detail)
		}
		v, d := types.ObjectValue(stageType.AttrTypes, map[string]attr.Value{
			"stage": types.StringValue(string(s.Stage)), "start": timeValue(&s.Start), "end": timeValue(s.End),
			"result": types.StringValue(s.Result), "detail": detail,
		})
		diags.Append(d...)
		stages = append(stages, v)
	}
	var d diag.Diagnostics
	out.Stages, d = types.ListValue(stageType, stages)
	diags.Append(d...)
	if h := rec.Handover; h != nil {
		out.Handover, d = types.ObjectValue(handoverType.AttrTypes, map[string]attr.Value{
			"requests": types.Int64Value(int64(h.Requests)), "failed": types.Int64Value(int64(h.Failed)),
			"retried": types.Int64Value(int64(h.Retried)),
		})
		diags.Append(d...)
	}
	return out, diags
}

// unknownRecord is the record of a run still to come.
func unknownRecord() bootstrapRecord {
	return bootstrapRecord{
		Mode:      types.StringUnknown(),
		Status:    types.StringUnknown(),
		Completed: types.StringUnknown(),
		Stages:    types.ListUnknown(stageType),
		Handover:  types.ObjectUnknown(handoverType.AttrTypes),
	}
}

func timeValue(t *time.Time) types.String {
	if t == nil || t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// manifestDigests lists the manifests of the output directory dir with their SHA-256, as its
// index.json records them: the value of manifests when the configuration leaves it out.
func manifestDigests(dir string) (types.Map, diag.Diagnostics) {
	var diags diag.Diagnostics
	_, idx, err := outdir.Open(dir)
	if err != nil {
		diags.AddAttributeError(tfpath.Root("dir"), "Cannot read the output directory", err.Error())
		return types.MapNull(types.StringType), diags
	}
	if idx == nil {
		return types.MapNull(types.StringType), diags
	}
	elems := map[string]attr.Value{}
	for _, e := range idx.Assets {
		if path.Dir(e.Path) == generator.OutManifestDir {
			elems[e.Path] = types.StringValue(e.SHA256)
		}
	}
	m, d := types.MapValue(types.StringType, elems)
	diags.Append(d...)
	return m, diags
}
