package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default paths of the access APIs, beside DefaultIdentityStorePath.
const (
	DefaultSSOAdminPath      = "/sso-admin"
	DefaultOrganizationsPath = "/organizations"
)

// Defaults of AccessOptions.
const (
	DefaultAccounts        = 12
	DefaultCompletionDelay = 200 * time.Millisecond
	DefaultMaxOutstanding  = 10
	DefaultAdminRateLimit  = 20
)

// AccessOptions configure the organization and the sso-admin API (permission sets and account
// assignments).
type AccessOptions struct {
	// Accounts is how many AWS accounts the organization made on first start holds, the
	// management account included (0: DefaultAccounts). An organization already in the data
	// file is kept as it is.
	Accounts int
	// CompletionDelay is how long an asynchronous operation (an account assignment created or
	// deleted, a permission set provisioned) stays IN_PROGRESS. 0: DefaultCompletionDelay;
	// negative: it completes on the next request.
	CompletionDelay time.Duration
	// MaxOutstanding is how many asynchronous operations may be IN_PROGRESS at once; one more is
	// refused with ThrottlingException, as AWS does. 0: DefaultMaxOutstanding; negative: no limit.
	MaxOutstanding int
	// RateLimit is the request rate per second the sso-admin and organizations APIs share
	// before ThrottlingException (TooManyRequestsException for organizations).
	// 0: DefaultAdminRateLimit; negative: unlimited.
	RateLimit float64
	// Burst is the token bucket size of RateLimit; 0 means max(1, RateLimit).
	Burst int
}

// Asynchronous operation statuses, as sso-admin names them.
const (
	statusInProgress = "IN_PROGRESS"
	statusSucceeded  = "SUCCEEDED"
	statusFailed     = "FAILED"
)

// orgAccount is an account of the emulated organization.
type orgAccount struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	Status   string            `json:"status"`
	ParentID string            `json:"parentId"`
	Joined   time.Time         `json:"joined"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// orgUnit is the root (ParentID "") or an organizational unit.
type orgUnit struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	ParentID string            `json:"parentId,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// orgDoc is the organization as stored.
type orgDoc struct {
	ID         string        `json:"id"`
	Management string        `json:"management"`
	RootID     string        `json:"rootId"`
	Units      []*orgUnit    `json:"units"`
	Accounts   []*orgAccount `json:"accounts"`
}

// customerRef is a customer managed policy reference.
type customerRef struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// permSet is a stored permission set.
type permSet struct {
	ARN             string            `json:"arn"`
	Name            string            `json:"name"`
	Description     string            `json:"description,omitempty"`
	SessionDuration string            `json:"sessionDuration"`
	RelayState      string            `json:"relayState,omitempty"`
	Created         time.Time         `json:"created"`
	Managed         []string          `json:"managed,omitempty"`
	Customer        []customerRef     `json:"customer,omitempty"`
	Inline          string            `json:"inline,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	// Provisioned lists the accounts the permission set is provisioned to.
	Provisioned []string `json:"provisioned,omitempty"`
	// Stale lists the provisioned accounts that do not have the latest version yet.
	Stale []string `json:"stale,omitempty"`
}

// assignmentKey identifies an account assignment.
type assignmentKey struct {
	Account       string `json:"account"`
	PermissionSet string `json:"permissionSet"`
	PrincipalType string `json:"principalType"`
	PrincipalID   string `json:"principalId"`
}

func (k assignmentKey) id() string {
	return k.Account + "|" + k.PermissionSet + "|" + k.PrincipalType + "|" + k.PrincipalID
}

// asyncKind says what an asynchronous operation does.
type asyncKind int

const (
	asyncCreate asyncKind = iota
	asyncDelete
	asyncProvision
)

// asyncOp is one asynchronous operation and its status.
type asyncOp struct {
	ID      string
	Seq     int64 // order of creation, for listings
	Kind    asyncKind
	Key     assignmentKey // for a provisioning: Account ("" for every provisioned account) and PermissionSet
	Status  string
	Reason  string
	Created time.Time
	Due     time.Time
}

// accessState is the organization and the instance's access, kept in memory and written through
// to the access_objects table.
type accessState struct {
	mu             sync.Mutex
	instanceARN    string
	instanceID     string
	org            *orgDoc
	accounts       map[string]*orgAccount
	units          map[string]*orgUnit
	permSets       map[string]*permSet // by ARN
	assignments    map[string]assignmentKey
	ops            map[string]*asyncOp // every operation kept, by request id
	opOrder        []string            // their ids, oldest first
	active         map[string]*asyncOp // the operations IN_PROGRESS
	opSeq          int64
	psSeq          int
	delay          time.Duration
	maxOutstanding int
	limiter        *rate.Limiter
	adminRate      float64
	// missingPolicies holds "account|path+name" of the customer managed policies an account lacks.
	missingPolicies map[string]bool
}

// hashID derives a deterministic identifier from the identity store id and the parts.
func hashID(parts ...string) []byte {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return h[:]
}

func hashHex(n int, parts ...string) string { return hex.EncodeToString(hashID(parts...))[:n] }

// hashDigits returns n decimal digits derived from the parts, not starting with 0.
func hashDigits(n int, parts ...string) string {
	v := binary.BigEndian.Uint64(hashID(parts...))
	s := fmt.Sprintf("%020d", v)
	d := s[len(s)-n:]
	if d[0] == '0' {
		d = "1" + d[1:]
	}
	return d
}

// initAccess loads the organization and the access data from the store, making the default
// organization on first start.
func (e *Emulator) initAccess(ctx context.Context, opts AccessOptions) error {
	a := &accessState{
		accounts: map[string]*orgAccount{}, units: map[string]*orgUnit{}, permSets: map[string]*permSet{},
		assignments: map[string]assignmentKey{}, ops: map[string]*asyncOp{}, active: map[string]*asyncOp{},
		missingPolicies: map[string]bool{},
	}
	e.access = a
	a.instanceID = "ssoins-" + hashHex(16, e.storeID, "instance")
	a.instanceARN = "arn:aws:sso:::instance/" + a.instanceID
	a.delay = opts.CompletionDelay
	if a.delay == 0 {
		a.delay = DefaultCompletionDelay
	}
	a.maxOutstanding = opts.MaxOutstanding
	if a.maxOutstanding == 0 {
		a.maxOutstanding = DefaultMaxOutstanding
	}
	e.SetAccessRate(opts.RateLimit, opts.Burst)
	if err := e.store.accessInit(ctx); err != nil {
		return err
	}
	org, err := e.store.accessLoad(ctx, a)
	if err != nil {
		return err
	}
	if org == nil {
		n := opts.Accounts
		if n <= 0 {
			n = DefaultAccounts
		}
		org = defaultOrganization(e.storeID, n, time.Now().UTC().Truncate(time.Second))
		if err := e.store.accessPut(ctx, "org", "org", org); err != nil {
			return err
		}
	} else if opts.Accounts > 0 && opts.Accounts != len(org.Accounts) {
		e.log.Warn("emulator: the data file holds an organization already; keeping it",
			"accounts", len(org.Accounts), "asked", opts.Accounts)
	}
	a.org = org
	for _, u := range org.Units {
		a.units[u.ID] = u
	}
	for _, acc := range org.Accounts {
		a.accounts[acc.ID] = acc
	}
	return nil
}

// defaultOrganization lays out n accounts: the management account in the root, two in the
// Security OU (log archive, audit), the rest spread over Workloads/Prod, Workloads/Dev and
// Sandbox, tagged with their environment.
func defaultOrganization(storeID string, n int, joined time.Time) *orgDoc {
	rootSuffix := hashHex(4, storeID, "root")
	ouID := func(name string) string {
		return "ou-" + rootSuffix + "-" + hashHex(8, storeID, "ou", name)
	}
	org := &orgDoc{ID: "o-" + hashHex(10, storeID, "org"), RootID: "r-" + rootSuffix}
	root := &orgUnit{ID: org.RootID, Name: "Root"}
	security := &orgUnit{ID: ouID("Security"), Name: "Security", ParentID: root.ID, Tags: map[string]string{"owner": "security"}}
	workloads := &orgUnit{ID: ouID("Workloads"), Name: "Workloads", ParentID: root.ID}
	prod := &orgUnit{ID: ouID("Prod"), Name: "Prod", ParentID: workloads.ID, Tags: map[string]string{"env": "prod"}}
	dev := &orgUnit{ID: ouID("Dev"), Name: "Dev", ParentID: workloads.ID, Tags: map[string]string{"env": "dev"}}
	sandbox := &orgUnit{ID: ouID("Sandbox"), Name: "Sandbox", ParentID: root.ID}
	org.Units = []*orgUnit{root, security, workloads, prod, dev, sandbox}
	used := map[string]bool{}
	add := func(name string, parent *orgUnit, tags map[string]string) {
		id := hashDigits(12, storeID, "account", name)
		for used[id] {
			id = hashDigits(12, storeID, "account", name, id)
		}
		used[id] = true
		org.Accounts = append(org.Accounts, &orgAccount{ID: id, Name: name, Email: "aws+" + name + "@example.com",
			Status: "ACTIVE", ParentID: parent.ID, Joined: joined, Tags: tags})
	}
	add("management", root, map[string]string{"env": "management"})
	org.Management = org.Accounts[0].ID
	if n >= 2 {
		add("log-archive", security, map[string]string{"env": "security", "team": "platform"})
	}
	if n >= 3 {
		add("audit", security, map[string]string{"env": "security", "team": "platform"})
	}
	spread := []struct {
		ou  *orgUnit
		env string
	}{{prod, "prod"}, {dev, "dev"}, {sandbox, "sandbox"}}
	count := map[string]int{}
	for i := 3; i < n; i++ {
		s := spread[(i-3)%len(spread)]
		count[s.env]++
		add(fmt.Sprintf("workload-%s-%d", s.env, count[s.env]), s.ou, map[string]string{"env": s.env})
	}
	return org
}

// SetAccessRate changes the request rate the sso-admin and organizations APIs share
// (0: DefaultAdminRateLimit, negative: unlimited). The bucket starts full.
func (e *Emulator) SetAccessRate(rps float64, burst int) {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	if rps == 0 {
		rps = DefaultAdminRateLimit
	}
	a.adminRate = rps
	a.limiter = nil
	if rps > 0 {
		if burst <= 0 {
			burst = max(1, int(rps))
		}
		a.limiter = rate.NewLimiter(rate.Limit(rps), burst)
	}
}

// SetAccountStatus sets an account's status (ACTIVE, SUSPENDED, PENDING_CLOSURE). Assignments
// and provisioning to an account that is not ACTIVE end FAILED with the reason.
func (e *Emulator) SetAccountStatus(accountID, status string) error {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	acc := a.accounts[accountID]
	if acc == nil {
		return fmt.Errorf("emulator: no account %s", accountID)
	}
	acc.Status = status
	return e.store.accessPut(context.Background(), "org", "org", a.org)
}

// AddAccount adds an ACTIVE account to the organization under the root or OU named parent
// ("Root", "Prod", ...), as a new account joining the organization, and returns its id (derived
// from the identity store id and the name, like the others).
func (e *Emulator) AddAccount(name, parent string, tags map[string]string) (string, error) {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	var unit *orgUnit
	for _, u := range a.org.Units {
		if u.Name == parent {
			unit = u
		}
	}
	if unit == nil {
		return "", fmt.Errorf("emulator: no root or OU named %q", parent)
	}
	for _, acc := range a.org.Accounts {
		if acc.Name == name {
			return "", fmt.Errorf("emulator: an account named %q exists already (%s)", name, acc.ID)
		}
	}
	id := hashDigits(12, e.storeID, "account", name)
	for a.accounts[id] != nil {
		id = hashDigits(12, e.storeID, "account", name, id)
	}
	acc := &orgAccount{ID: id, Name: name, Email: "aws+" + name + "@example.com", Status: "ACTIVE", ParentID: unit.ID,
		Joined: time.Now().UTC().Truncate(time.Second), Tags: tags}
	a.org.Accounts = append(a.org.Accounts, acc)
	a.accounts[id] = acc
	if err := e.store.accessPut(context.Background(), "org", "org", a.org); err != nil {
		return "", err
	}
	return id, nil
}

// SetCustomerPolicyMissing says whether the account lacks the customer managed policy name
// (path "/" unless name carries one): an assignment or provisioning of a permission set that
// references it to that account ends FAILED, as AWS's does when IAM cannot attach it.
func (e *Emulator) SetCustomerPolicyMissing(accountID, name string, missing bool) {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	a.missingPolicies[accountID+"|"+name] = missing
}

// AccessAssignment is one account assignment, as Assignments reports it.
type AccessAssignment struct {
	AccountID        string
	PermissionSetARN string
	PrincipalType    string
	PrincipalID      string
}

// Assignments returns every account assignment, sorted, for tests to compare with what they expect.
func (e *Emulator) Assignments() []AccessAssignment {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(context.Background(), e)
	out := make([]AccessAssignment, 0, len(a.assignments))
	for _, k := range a.assignments {
		out = append(out, AccessAssignment{k.Account, k.PermissionSet, k.PrincipalType, k.PrincipalID})
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		return x.AccountID+x.PermissionSetARN+x.PrincipalType+x.PrincipalID < y.AccountID+y.PermissionSetARN+y.PrincipalType+y.PrincipalID
	})
	return out
}

// InstanceARN returns the ARN of the emulated Identity Center instance.
func (e *Emulator) InstanceARN() string { return e.access.instanceARN }

// SSOAdminPath returns the path to append to the server URL for the ssoadmin client's BaseEndpoint.
func (e *Emulator) SSOAdminPath() string { return DefaultSSOAdminPath }

// OrganizationsPath returns the path to append to the server URL for the organizations client's
// BaseEndpoint.
func (e *Emulator) OrganizationsPath() string { return DefaultOrganizationsPath }

// AccountIDs returns the organization's account ids, the management account first.
func (e *Emulator) AccountIDs() []string {
	a := e.access
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.org.Accounts))
	for _, acc := range a.org.Accounts {
		out = append(out, acc.ID)
	}
	return out
}

// outstanding counts the operations IN_PROGRESS. Call with a.mu held, after sweep.
func (a *accessState) outstanding() int { return len(a.active) }

// maxKeptOps is how many ended operations the status listings keep, as AWS keeps recent ones.
const maxKeptOps = 10000

// sweep completes every operation whose time has come, and forgets the oldest ended ones past
// maxKeptOps. Call with a.mu held.
func (a *accessState) sweep(ctx context.Context, e *Emulator) {
	now := time.Now()
	var due []*asyncOp
	for _, op := range a.active {
		if !now.Before(op.Due) {
			due = append(due, op)
		}
	}
	// In the order they were made: a create and a delete of one assignment end as AWS would.
	slices.SortFunc(due, func(x, y *asyncOp) int { return int(x.Seq - y.Seq) })
	for _, op := range due {
		a.complete(ctx, e, op)
		delete(a.active, op.ID)
	}
	for len(a.opOrder) > maxKeptOps+len(a.active) {
		id := a.opOrder[0]
		if a.ops[id].Status == statusInProgress {
			break
		}
		delete(a.ops, id)
		a.opOrder = a.opOrder[1:]
	}
}

// complete ends one operation: SUCCEEDED with its effect, or FAILED with a reason.
func (a *accessState) complete(ctx context.Context, e *Emulator, op *asyncOp) {
	fail := func(reason string) { op.Status, op.Reason = statusFailed, reason }
	ps := a.permSets[op.Key.PermissionSet]
	if ps == nil && op.Kind != asyncDelete {
		fail("The permission set " + op.Key.PermissionSet + " was deleted")
		return
	}
	accounts := []string{op.Key.Account}
	if op.Kind == asyncProvision && op.Key.Account == "" {
		accounts = slices.Clone(ps.Provisioned)
	}
	if op.Kind != asyncDelete {
		for _, acc := range accounts {
			if reason := a.provisionProblem(ps, acc); reason != "" {
				fail(reason)
				return
			}
		}
	}
	var err error
	switch op.Kind {
	case asyncCreate:
		a.assignments[op.Key.id()] = op.Key
		err = e.store.accessPut(ctx, "assignment", op.Key.id(), op.Key)
		if err == nil && !slices.Contains(ps.Provisioned, op.Key.Account) {
			ps.Provisioned = append(ps.Provisioned, op.Key.Account)
			slices.Sort(ps.Provisioned)
			err = e.store.accessPut(ctx, "permission_set", ps.ARN, ps)
		}
	case asyncDelete:
		delete(a.assignments, op.Key.id())
		err = e.store.accessDelete(ctx, "assignment", op.Key.id())
	case asyncProvision:
		for _, acc := range accounts {
			if !slices.Contains(ps.Provisioned, acc) {
				ps.Provisioned = append(ps.Provisioned, acc)
			}
			ps.Stale = slices.DeleteFunc(ps.Stale, func(s string) bool { return s == acc })
		}
		slices.Sort(ps.Provisioned)
		err = e.store.accessPut(ctx, "permission_set", ps.ARN, ps)
	}
	if err != nil {
		e.log.ErrorContext(ctx, "emulator: store access change", "error", err)
		fail("An internal error occurred")
		return
	}
	op.Status = statusSucceeded
}

// provisionProblem says why the permission set cannot be provisioned to the account, or "".
func (a *accessState) provisionProblem(ps *permSet, accountID string) string {
	acc := a.accounts[accountID]
	if acc == nil {
		return "Account " + accountID + " is not a member of the organization"
	}
	if acc.Status != "ACTIVE" {
		return "Account " + accountID + " is " + acc.Status + ": the role for " + ps.Name + " cannot be created"
	}
	for _, ref := range ps.Customer {
		if a.missingPolicies[accountID+"|"+ref.Path+ref.Name] {
			return fmt.Sprintf("Received a 404 status error: the customer managed policy %s%s does not exist in account %s",
				ref.Path, ref.Name, accountID)
		}
	}
	return ""
}

// startOp records a new asynchronous operation, refusing it when MaxOutstanding are already in
// progress. Call with a.mu held, after sweep.
func (a *accessState) startOp(e *Emulator, kind asyncKind, key assignmentKey) (*asyncOp, error) {
	n := a.outstanding()
	if a.maxOutstanding > 0 && n >= a.maxOutstanding {
		e.count("sso-admin.OutstandingRefused")
		return nil, &apiError{status: 400, detail: "There are too many requests processing. Please try again later.",
			awsType: "ThrottlingException"}
	}
	now := time.Now()
	a.opSeq++
	op := &asyncOp{ID: newUUID(), Seq: a.opSeq, Kind: kind, Key: key, Status: statusInProgress, Created: now, Due: now.Add(max(a.delay, 0))}
	a.ops[op.ID] = op
	a.active[op.ID] = op
	a.opOrder = append(a.opOrder, op.ID)
	e.countMax("sso-admin.MaxOutstanding", int64(n+1))
	return op, nil
}

// countMax raises the named counter to v when v is larger.
func (e *Emulator) countMax(name string, v int64) {
	e.statsMu.Lock()
	if v > e.stats[name] {
		e.stats[name] = v
	}
	e.statsMu.Unlock()
}
