package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/access/awsaccess"
	"github.com/scimbridge/scimbridge/scim/emulator"
)

// AccessOptions configure the access phase: assignment operations against the embedded Identity
// Center's sso-admin API, through scim/access/awsaccess and the real SDK.
type AccessOptions struct {
	// Operations is how many assignments are created, then deleted (default 600).
	Operations int
	// Accounts in the organization (default 12); the assignments are groups x accounts.
	Accounts int
	// RPS is the emulator's admin request rate (default 20), MaxOutstanding its limit of
	// outstanding operations (default 10), Delay how long each operation takes (default 2 s).
	RPS            float64
	MaxOutstanding int
	Delay          time.Duration
	// Latency is added by the emulator to every request.
	Latency time.Duration
	// ClientRate is the client's rate ceiling (default RPS: AWS documents 20 requests a second).
	ClientRate float64
	// PollMin and FirstEstimate tune the client's polling (0: its defaults).
	PollMin, FirstEstimate time.Duration
	Log                    *slog.Logger
}

// AccessPhase is one direction of the access bench.
type AccessPhase struct {
	Name       string           `json:"name"`
	Operations int              `json:"operations"`
	Failed     int              `json:"failed"`
	Requests   map[string]int64 `json:"requests"` // as the emulator counted them, sso-admin only
	// Starts, Polls: the emulator's count of start calls and of status calls.
	Starts int64 `json:"starts"`
	Polls  int64 `json:"polls"`
	// RequestsPerOp is (Starts + Polls) / Operations.
	RequestsPerOp float64 `json:"requestsPerOperation"`
	// ThrottledClient and ThrottledTarget are the throttles as the client and the emulator
	// counted them.
	ThrottledClient int64   `json:"throttledClient"`
	ThrottledTarget int64   `json:"throttledTarget"`
	MaxOutstanding  int64   `json:"maxOutstanding"`
	WallSeconds     float64 `json:"wallSeconds"`
	// LimitSeconds is what the settings allow: Operations x Delay / MaxOutstanding.
	LimitSeconds float64 `json:"limitSeconds"`
}

// AccessReport is the access bench's result.
type AccessReport struct {
	RPS            float64       `json:"rps"`
	MaxOutstanding int           `json:"maxOutstanding"`
	DelaySeconds   float64       `json:"delaySeconds"`
	Phases         []AccessPhase `json:"phases"`
}

func (o *AccessOptions) defaults() {
	if o.Operations <= 0 {
		o.Operations = 600
	}
	if o.Accounts <= 0 {
		o.Accounts = 12
	}
	if o.RPS == 0 {
		o.RPS = 20
	}
	if o.MaxOutstanding <= 0 {
		o.MaxOutstanding = 10
	}
	if o.Delay <= 0 {
		o.Delay = 2 * time.Second
	}
	if o.ClientRate <= 0 {
		o.ClientRate = o.RPS
		if o.RPS < 0 {
			o.ClientRate = 1000
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// RunAccess starts an emulator with the options' limits, makes ceil(Operations / Accounts)
// groups and one permission set, and measures creating Operations assignments and deleting them.
func RunAccess(ctx context.Context, o AccessOptions) (*AccessReport, error) {
	o.defaults()
	emu, err := emulator.New(emulator.Options{Latency: o.Latency, Access: emulator.AccessOptions{
		Accounts: o.Accounts, CompletionDelay: o.Delay, MaxOutstanding: o.MaxOutstanding, RateLimit: o.RPS}})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")}
	sso := ssoadmin.NewFromConfig(cfg, func(so *ssoadmin.Options) { so.BaseEndpoint = aws.String(srv.URL + emu.SSOAdminPath()) })
	org := organizations.NewFromConfig(cfg, func(oo *organizations.Options) { oo.BaseEndpoint = aws.String(srv.URL + emu.OrganizationsPath()) })
	ids := identitystore.NewFromConfig(cfg, func(io *identitystore.Options) { io.BaseEndpoint = aws.String(srv.URL + emu.IdentityStorePath()) })
	c := awsaccess.New(sso, org, awsaccess.Options{MaxOutstanding: o.MaxOutstanding, Rate: o.ClientRate,
		PollMin: o.PollMin, FirstEstimate: o.FirstEstimate, Logger: o.Log})

	inst, err := c.Instance(ctx)
	if err != nil {
		return nil, err
	}
	accounts := emu.AccountIDs()
	ps, err := c.CreatePermissionSet(ctx, inst, access.PermissionSet{Name: "BenchReadOnly",
		ManagedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}})
	if err != nil {
		return nil, err
	}
	var creates, deletes []access.AssignmentOp
	for g := 0; len(creates) < o.Operations; g++ {
		out, err := ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: aws.String(emu.IdentityStoreID()),
			DisplayName: aws.String(fmt.Sprintf("bench-group-%04d", g))})
		if err != nil {
			return nil, fmt.Errorf("create group %d: %w", g, err)
		}
		for _, acc := range accounts {
			if len(creates) == o.Operations {
				break
			}
			a := access.Assignment{AccountID: acc, PermissionSetARN: ps, PrincipalType: access.PrincipalGroup, PrincipalID: aws.ToString(out.GroupId)}
			creates = append(creates, access.AssignmentOp{Kind: access.OpCreate, Assignment: a})
			deletes = append(deletes, access.AssignmentOp{Kind: access.OpDelete, Assignment: a})
		}
	}
	rep := &AccessReport{RPS: o.RPS, MaxOutstanding: o.MaxOutstanding, DelaySeconds: o.Delay.Seconds()}
	for _, ph := range []struct {
		name string
		ops  []access.AssignmentOp
	}{{"create", creates}, {"delete", deletes}} {
		p, err := runAccessPhase(ctx, c, emu, inst, ph.name, ph.ops, o)
		if err != nil {
			return rep, err
		}
		rep.Phases = append(rep.Phases, *p)
		o.Log.Info("access phase done", "phase", p.Name, "wall", p.WallSeconds, "limit", p.LimitSeconds)
	}
	if left := len(emu.Assignments()); left != 0 {
		return rep, fmt.Errorf("access bench: %d assignments left after deleting them all", left)
	}
	return rep, nil
}

func runAccessPhase(ctx context.Context, c *awsaccess.Client, emu *emulator.Emulator, inst access.Instance, name string, ops []access.AssignmentOp, o AccessOptions) (*AccessPhase, error) {
	emu.ResetStats()
	_, throttledBefore := c.Calls()
	p := &AccessPhase{Name: name, Operations: len(ops), Requests: map[string]int64{},
		LimitSeconds: float64(len(ops)) * o.Delay.Seconds() / float64(o.MaxOutstanding)}
	start := time.Now()
	var firstErr error
	err := c.ApplyAssignments(ctx, inst, ops, func(r access.OpResult) {
		if r.Err != nil {
			p.Failed++
			if firstErr == nil {
				firstErr = r.Err
			}
		}
	})
	p.WallSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	st := emu.Stats()
	for k, v := range st {
		op, ok := strings.CutPrefix(k, "sso-admin.")
		if !ok {
			continue
		}
		switch op {
		case "MaxOutstanding":
			p.MaxOutstanding = v
		case "throttled", "OutstandingRefused":
		case "CreateAccountAssignment", "DeleteAccountAssignment":
			p.Requests[op] = v
			p.Starts += v
		default:
			p.Requests[op] = v
			p.Polls += v
		}
	}
	p.ThrottledTarget = st["sso-admin.throttled"]
	_, throttledAfter := c.Calls()
	p.ThrottledClient = throttledAfter - throttledBefore
	p.RequestsPerOp = float64(p.Starts+p.Polls) / float64(max(1, len(ops)))
	if firstErr != nil {
		return p, fmt.Errorf("access bench: %d of %d %s operations failed, first: %w", p.Failed, len(ops), name, firstErr)
	}
	return p, nil
}

// WriteTable prints the access report.
func (r *AccessReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "access: %.0f requests/s, %d outstanding, %.1f s per operation\n", r.RPS, r.MaxOutstanding, r.DelaySeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\toperations\twall\tlimit\tratio\trequests/op\tstarts\tpolls\tthrottled (client/target)\tmax outstanding\t")
	var ops int
	var wall, limit float64
	var reqs int64
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%.1f s\t%.1f s\t%.3f\t%.2f\t%d\t%d\t%d/%d\t%d\t\n", p.Name, p.Operations, p.WallSeconds, p.LimitSeconds,
			p.WallSeconds/p.LimitSeconds, p.RequestsPerOp, p.Starts, p.Polls, p.ThrottledClient, p.ThrottledTarget, p.MaxOutstanding)
		ops += p.Operations
		wall += p.WallSeconds
		limit += p.LimitSeconds
		reqs += p.Starts + p.Polls
	}
	if ops > 0 && limit > 0 {
		fmt.Fprintf(tw, "total\t%d\t%.1f s\t%.1f s\t%.3f\t%.2f\t\t\t\t\t\n", ops, wall, limit, wall/limit, float64(reqs)/float64(ops))
	}
	return tw.Flush()
}
