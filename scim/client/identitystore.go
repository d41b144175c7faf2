package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/scimbridge/scimbridge/scim"
)

// enterpriseExtension is the identitystore name of the SCIM enterprise user extension.
const enterpriseExtension = "aws:identitystore:enterprise"

// IdentityStoreConfig configures an IdentityStoreReader.
type IdentityStoreConfig struct {
	// StoreID is the identity store id (d-xxxxxxxxxx).
	StoreID string
	// AWS is the AWS configuration the environment gives (config.LoadDefaultConfig: credentials,
	// region, AWS_PROFILE, shared config files, and the endpoint from AWS_ENDPOINT_URL,
	// AWS_ENDPOINT_URL_IDENTITYSTORE or a profile's endpoint_url). Nil: only the fields below.
	AWS *aws.Config
	// Region is the AWS region of the identity store; "" takes AWS's. One of them must be set.
	Region string
	// Endpoint overrides the service endpoint (the emulator); "" means the one AWS's
	// configuration names, else AWS's own.
	Endpoint string
	// Credentials are the AWS credentials; nil takes AWS's. One of them must be set.
	Credentials aws.CredentialsProvider
	// HTTPClient is used for requests; nil means DefaultHTTPClient().
	HTTPClient *http.Client
	// Limiter is shared by all requests of the reader; nil means none. Identitystore has its own
	// rate limit, apart from SCIM's, so give it a limiter of its own.
	Limiter *Limiter
	// Retry is the retry policy; zero fields take DefaultRetryPolicy's.
	Retry RetryPolicy
	// Observer, when set, is told about every request.
	Observer Observer
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
	// ReadConcurrency is how many membership listings run at once; 0 means 8.
	ReadConcurrency int
}

// IdentityStoreReader reads a target's state in bulk through the AWS identitystore API, which
// returns group memberships per group (one listing per group instead of one per user).
type IdentityStoreReader struct {
	api     *identitystore.Client
	storeID string
	retry   retrier
	log     *slog.Logger
	readC   int
}

// NewIdentityStoreReader returns a reader for the identity store in cfg. SDK retries are off:
// the reader retries itself, so that throttles reach its limiter.
func NewIdentityStoreReader(ctx context.Context, cfg IdentityStoreConfig) (*IdentityStoreReader, error) {
	if cfg.StoreID == "" {
		return nil, errors.New("identitystore: no identity store id configured")
	}
	var awsCfg aws.Config
	if cfg.AWS != nil {
		awsCfg = cfg.AWS.Copy()
	}
	if cfg.Region != "" {
		awsCfg.Region = cfg.Region
	}
	if cfg.Credentials != nil {
		awsCfg.Credentials = cfg.Credentials
	}
	if awsCfg.Region == "" {
		return nil, errors.New("identitystore: no region configured")
	}
	if awsCfg.Credentials == nil {
		return nil, errors.New("identitystore: no credentials configured")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("identitystore: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	awsCfg.HTTPClient = hc
	awsCfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	awsCfg.RetryMaxAttempts = 0
	api := identitystore.NewFromConfig(awsCfg, func(o *identitystore.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	r := &IdentityStoreReader{api: api, storeID: cfg.StoreID, log: cfg.Logger, readC: cfg.ReadConcurrency,
		retry: retrier{policy: cfg.Retry.withDefaults(), limiter: cfg.Limiter, observer: cfg.Observer}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.readC <= 0 {
		r.readC = 8
	}
	return r, nil
}

// call runs one identitystore operation with retries, mapping its errors to *APIError.
func (r *IdentityStoreReader) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return r.retry.do(ctx, "identitystore", op, func(ctx context.Context) (int, error) {
		err := fn(ctx)
		if err == nil {
			return 200, nil
		}
		ae := awsAPIError("identitystore "+op, err)
		if ae == nil {
			return 0, fmt.Errorf("identitystore %s: %w", op, err)
		}
		if ae.throttled() || ae.Status >= 500 {
			r.log.Debug("identitystore request failed, may retry", "op", op, "status", ae.Status, "code", ae.Code)
		}
		return ae.Status, ae
	})
}

// awsAPIError turns an error of the AWS SDK that carries an answer of the service into an
// *APIError; nil when there was no answer (a network failure).
func awsAPIError(op string, err error) *APIError {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		return nil
	}
	if re.HTTPStatusCode() < 300 {
		// A success whose body could not be read (the connection closed or reset part-way):
		// a network failure, worth another attempt, not an answer of the service.
		return nil
	}
	ae := &APIError{Op: op, Status: re.HTTPStatusCode()}
	var rid interface{ ServiceRequestID() string }
	if errors.As(err, &rid) {
		ae.RequestID = rid.ServiceRequestID()
	}
	var sae smithy.APIError
	if errors.As(err, &sae) {
		ae.Code, ae.Detail = sae.ErrorCode(), sae.ErrorMessage()
	}
	var te *types.ThrottlingException
	if errors.As(err, &te) && te.RetryAfterSeconds > 0 {
		ae.RetryAfter = time.Duration(te.RetryAfterSeconds) * time.Second
	}
	var ie *types.InternalServerException
	if errors.As(err, &ie) && ie.RetryAfterSeconds > 0 {
		ae.RetryAfter = time.Duration(ie.RetryAfterSeconds) * time.Second
	}
	return ae
}

// ReadState reads every user and group of the identity store, with the enterprise extension
// and externalIds, and every group's members (one paged ListGroupMemberships per group,
// ReadConcurrency at a time). Members of each group are sorted.
func (r *IdentityStoreReader) ReadState(ctx context.Context) (*scim.TargetState, error) {
	st := &scim.TargetState{}
	var wg sync.WaitGroup
	var uerr, gerr error
	wg.Go(func() { st.Users, uerr = r.listUsers(ctx) })
	wg.Go(func() { st.Groups, gerr = r.listGroups(ctx) })
	wg.Wait()
	if err := errors.Join(uerr, gerr); err != nil {
		return nil, err
	}
	if err := r.readMembers(ctx, st.Groups); err != nil {
		return nil, err
	}
	slices.SortFunc(st.Users, func(a, b scim.TargetUser) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Groups, func(a, b scim.TargetGroup) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}

func (r *IdentityStoreReader) listUsers(ctx context.Context) ([]scim.TargetUser, error) {
	var users []scim.TargetUser
	var token *string
	for {
		var out *identitystore.ListUsersOutput
		err := r.call(ctx, "ListUsers", func(ctx context.Context) error {
			var err error
			out, err = r.api.ListUsers(ctx, &identitystore.ListUsersInput{IdentityStoreId: &r.storeID,
				MaxResults: aws.Int32(100), NextToken: token, Extensions: []string{enterpriseExtension}})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("identitystore: list users: %w", err)
		}
		for i := range out.Users {
			u, err := isUser(&out.Users[i])
			if err != nil {
				return nil, fmt.Errorf("identitystore: list users: %w", err)
			}
			users = append(users, u)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return users, nil
		}
		if token != nil && *token == *out.NextToken {
			return nil, errors.New("identitystore: list users: the service returned the same next token twice")
		}
		token = out.NextToken
	}
}

func (r *IdentityStoreReader) listGroups(ctx context.Context) ([]scim.TargetGroup, error) {
	var groups []scim.TargetGroup
	var token *string
	for {
		var out *identitystore.ListGroupsOutput
		err := r.call(ctx, "ListGroups", func(ctx context.Context) error {
			var err error
			out, err = r.api.ListGroups(ctx, &identitystore.ListGroupsInput{IdentityStoreId: &r.storeID,
				MaxResults: aws.Int32(100), NextToken: token})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("identitystore: list groups: %w", err)
		}
		for _, g := range out.Groups {
			groups = append(groups, scim.TargetGroup{ID: aws.ToString(g.GroupId), ExternalID: pickExternalID(g.ExternalIds),
				DisplayName: aws.ToString(g.DisplayName), Created: aws.ToTime(g.CreatedAt)})
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return groups, nil
		}
		if token != nil && *token == *out.NextToken {
			return nil, errors.New("identitystore: list groups: the service returned the same next token twice")
		}
		token = out.NextToken
	}
}

// readMembers fills in the members of every group; the first failure cancels the rest.
func (r *IdentityStoreReader) readMembers(ctx context.Context, groups []scim.TargetGroup) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan *scim.TargetGroup)
	var wg sync.WaitGroup
	for range min(r.readC, max(1, len(groups))) {
		wg.Go(func() {
			for g := range next {
				m, err := r.groupMembers(ctx, g.ID)
				if err != nil {
					cancel(err)
					continue
				}
				slices.Sort(m)
				g.Members = slices.Compact(m)
			}
		})
	}
feed:
	for i := range groups {
		select {
		case next <- &groups[i]:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

func (r *IdentityStoreReader) groupMembers(ctx context.Context, gid string) ([]string, error) {
	var ids []string
	var token *string
	for {
		var out *identitystore.ListGroupMembershipsOutput
		err := r.call(ctx, "ListGroupMemberships", func(ctx context.Context) error {
			var err error
			out, err = r.api.ListGroupMemberships(ctx, &identitystore.ListGroupMembershipsInput{IdentityStoreId: &r.storeID,
				GroupId: aws.String(gid), MaxResults: aws.Int32(100), NextToken: token})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("identitystore: list members of group %s: %w", gid, err)
		}
		for _, m := range out.GroupMemberships {
			if u, ok := m.MemberId.(*types.MemberIdMemberUserId); ok && u.Value != "" {
				ids = append(ids, u.Value)
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return ids, nil
		}
		if token != nil && *token == *out.NextToken {
			return nil, fmt.Errorf("identitystore: list members of group %s: the service returned the same next token twice", gid)
		}
		token = out.NextToken
	}
}

// pickExternalID returns the externalId a SCIM client set: the first one, preferring an issuer
// that names SCIM when there are several.
func pickExternalID(ids []types.ExternalId) string {
	for _, e := range ids {
		if strings.Contains(strings.ToLower(aws.ToString(e.Issuer)), "scim") {
			return aws.ToString(e.Id)
		}
	}
	if len(ids) > 0 {
		return aws.ToString(ids[0].Id)
	}
	return ""
}

// isUser maps an identitystore user to the model, the same way a SCIM read does: every row of
// the attribute table from the field its Store names.
func isUser(u *types.User) (scim.TargetUser, error) {
	t := scim.TargetUser{ID: aws.ToString(u.UserId), Created: aws.ToTime(u.CreatedAt),
		User: scim.User{Active: u.UserStatus != types.UserStatusDisabled}}
	var ent map[string]any
	if doc, ok := u.Extensions[enterpriseExtension]; ok && doc != nil {
		if err := doc.UnmarshalSmithyDocument(&ent); err != nil {
			return scim.TargetUser{}, fmt.Errorf("user %s: enterprise extension: %w", t.ID, err)
		}
	}
	for _, r := range isRows {
		r.attr.Set(&t.User, r.get(u, ent))
	}
	return t, nil
}
