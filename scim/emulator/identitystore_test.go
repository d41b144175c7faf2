package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
)

func sdkClient(srv *emulatortest.Server, attempts int) *identitystore.Client {
	return identitystore.New(identitystore.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.IdentityStoreEndpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: attempts,
	})
}

func TestIdentityStoreReads(t *testing.T) {
	srv, c := start(t, emulator.Options{})
	ctx := context.Background()
	is := sdkClient(srv, 1)
	store := aws.String(srv.StoreID)

	var uids []string
	for i := range 130 {
		uids = append(uids, c.createUser(fmt.Sprintf("r%03d", i)))
	}
	g1 := c.createGroup("readers", uids[:100]...)
	c.must(204, "PATCH", "/Groups/"+g1, patch(op("add", "members", []any{
		map[string]any{"value": uids[100]}, map[string]any{"value": uids[101]}})))
	g2 := c.createGroup("writers", uids[0])

	// ListUsers pages of 100 with NextToken.
	var users []types.User
	p := identitystore.NewListUsersPaginator(is, &identitystore.ListUsersInput{IdentityStoreId: store})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(page.Users) > 100 {
			t.Errorf("page of %d users", len(page.Users))
		}
		users = append(users, page.Users...)
	}
	if len(users) != 130 {
		t.Fatalf("ListUsers: %d users, want 130", len(users))
	}
	u0 := users[0]
	if aws.ToString(u0.UserName) != "r000" || len(u0.ExternalIds) != 1 || aws.ToString(u0.ExternalIds[0].Id) != "ext-r000" ||
		aws.ToString(u0.ExternalIds[0].Issuer) != emulator.SCIMExternalIDIssuer || len(u0.Emails) != 1 || !u0.Emails[0].Primary {
		t.Errorf("user 0 = %+v", u0)
	}

	groups, err := is.ListGroups(ctx, &identitystore.ListGroupsInput{IdentityStoreId: store})
	if err != nil || len(groups.Groups) != 2 {
		t.Fatalf("ListGroups: %v, %d groups", err, len(groups.Groups))
	}

	var members int
	mp := identitystore.NewListGroupMembershipsPaginator(is, &identitystore.ListGroupMembershipsInput{
		IdentityStoreId: store, GroupId: aws.String(g1), MaxResults: aws.Int32(40)})
	for mp.HasMorePages() {
		page, err := mp.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListGroupMemberships: %v", err)
		}
		members += len(page.GroupMemberships)
	}
	if members != 102 {
		t.Errorf("ListGroupMemberships: %d, want 102", members)
	}

	forMember, err := is.ListGroupMembershipsForMember(ctx, &identitystore.ListGroupMembershipsForMemberInput{
		IdentityStoreId: store, MemberId: &types.MemberIdMemberUserId{Value: uids[0]}})
	if err != nil || len(forMember.GroupMemberships) != 2 {
		t.Fatalf("ListGroupMembershipsForMember: %v, %+v", err, forMember)
	}

	byExt, err := is.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: store,
		AlternateIdentifier: &types.AlternateIdentifierMemberExternalId{Value: types.ExternalId{
			Issuer: aws.String(emulator.SCIMExternalIDIssuer), Id: aws.String("ext-r005")}}})
	if err != nil || aws.ToString(byExt.UserId) != uids[5] {
		t.Errorf("GetUserId by externalId: %v, %v", err, byExt)
	}
	byName, err := is.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: store,
		AlternateIdentifier: &types.AlternateIdentifierMemberUniqueAttribute{Value: types.UniqueAttribute{
			AttributePath: aws.String("userName"), AttributeValue: document.NewLazyDocument("R007")}}})
	if err != nil || aws.ToString(byName.UserId) != uids[7] {
		t.Errorf("GetUserId by userName: %v, %v", err, byName)
	}
	gByName, err := is.GetGroupId(ctx, &identitystore.GetGroupIdInput{IdentityStoreId: store,
		AlternateIdentifier: &types.AlternateIdentifierMemberUniqueAttribute{Value: types.UniqueAttribute{
			AttributePath: aws.String("displayName"), AttributeValue: document.NewLazyDocument("writers")}}})
	if err != nil || aws.ToString(gByName.GroupId) != g2 {
		t.Errorf("GetGroupId by displayName: %v, %v", err, gByName)
	}
	gByExt, err := is.GetGroupId(ctx, &identitystore.GetGroupIdInput{IdentityStoreId: store,
		AlternateIdentifier: &types.AlternateIdentifierMemberExternalId{Value: types.ExternalId{
			Issuer: aws.String(emulator.SCIMExternalIDIssuer), Id: aws.String("ext-readers")}}})
	if err != nil || aws.ToString(gByExt.GroupId) != g1 {
		t.Errorf("GetGroupId by externalId: %v, %v", err, gByExt)
	}

	du, err := is.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: store, UserId: aws.String(uids[3])})
	if err != nil || aws.ToString(du.UserName) != "r003" || aws.ToString(du.Name.GivenName) != "Given" || du.UserStatus != types.UserStatusEnabled {
		t.Errorf("DescribeUser: %v, %+v", err, du)
	}
	dg, err := is.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: store, GroupId: aws.String(g1)})
	if err != nil || aws.ToString(dg.DisplayName) != "readers" || len(dg.ExternalIds) != 1 {
		t.Errorf("DescribeGroup: %v, %+v", err, dg)
	}

	in, err := is.IsMemberInGroups(ctx, &identitystore.IsMemberInGroupsInput{IdentityStoreId: store,
		MemberId: &types.MemberIdMemberUserId{Value: uids[120]}, GroupIds: []string{g1, g2}})
	if err != nil || len(in.Results) != 2 || in.Results[0].MembershipExists || in.Results[1].MembershipExists {
		t.Errorf("IsMemberInGroups(non-member): %v, %+v", err, in)
	}
	in, err = is.IsMemberInGroups(ctx, &identitystore.IsMemberInGroupsInput{IdentityStoreId: store,
		MemberId: &types.MemberIdMemberUserId{Value: uids[0]}, GroupIds: []string{g1}})
	if err != nil || !in.Results[0].MembershipExists {
		t.Errorf("IsMemberInGroups(member): %v, %+v", err, in)
	}

	// Errors.
	var nf *types.ResourceNotFoundException
	_, err = is.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: store, UserId: aws.String("nope")})
	if !errors.As(err, &nf) {
		t.Errorf("DescribeUser(missing): %v, want ResourceNotFoundException", err)
	}
	_, err = is.ListUsers(ctx, &identitystore.ListUsersInput{IdentityStoreId: aws.String("d-0000000000")})
	if !errors.As(err, &nf) {
		t.Errorf("ListUsers(wrong store): %v, want ResourceNotFoundException", err)
	}
	var ve *types.ValidationException
	_, err = is.ListUsers(ctx, &identitystore.ListUsersInput{IdentityStoreId: store, MaxResults: aws.Int32(101)})
	if !errors.As(err, &ve) {
		t.Errorf("ListUsers(MaxResults 101): %v, want ValidationException", err)
	}
	_, err = is.ListUsers(ctx, &identitystore.ListUsersInput{IdentityStoreId: store, NextToken: aws.String("garbage")})
	if !errors.As(err, &ve) {
		t.Errorf("ListUsers(bad token): %v, want ValidationException", err)
	}

	if st := srv.Emu.Stats(); st["identitystore.ListUsers"] < 2 || st["identitystore.GetUserId"] != 2 {
		t.Errorf("stats = %v", st)
	}
}

func TestIdentityStoreWrites(t *testing.T) {
	srv, c := start(t, emulator.Options{})
	ctx := context.Background()
	is := sdkClient(srv, 1)
	store := aws.String(srv.StoreID)

	cu, err := is.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: store, UserName: aws.String("manual"),
		DisplayName: aws.String("Manual User"), Name: &types.Name{GivenName: aws.String("Man"), FamilyName: aws.String("Ual")},
		Emails: []types.Email{{Value: aws.String("manual@example.com"), Primary: true}}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	var ce *types.ConflictException
	if _, err := is.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: store, UserName: aws.String("MANUAL")}); !errors.As(err, &ce) {
		t.Errorf("duplicate CreateUser: %v, want ConflictException", err)
	}
	// The SCIM side sees the user, without an externalId, and refuses a duplicate.
	r := c.must(200, "GET", "/Users/"+aws.ToString(cu.UserId), nil)
	if _, ok := r.body["externalId"]; ok {
		t.Errorf("identitystore user has an externalId: %s", r.raw)
	}
	checkAWSError(t, c.do("POST", "/Users", user("manual")), 409)

	cg, err := is.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: store, DisplayName: aws.String("AWSControlTowerAdmins")})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	cm, err := is.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: store,
		GroupId: cg.GroupId, MemberId: &types.MemberIdMemberUserId{Value: aws.ToString(cu.UserId)}})
	if err != nil {
		t.Fatalf("CreateGroupMembership: %v", err)
	}
	if _, err := is.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: store,
		GroupId: cg.GroupId, MemberId: &types.MemberIdMemberUserId{Value: aws.ToString(cu.UserId)}}); !errors.As(err, &ce) {
		t.Errorf("duplicate membership: %v, want ConflictException", err)
	}
	r = c.must(200, "GET", "/Groups"+q(`members.value eq "`+aws.ToString(cu.UserId)+`"`), nil)
	if len(r.resources()) != 1 {
		t.Errorf("SCIM does not see the identitystore membership: %s", r.raw)
	}

	up, err := is.UpdateUser(ctx, &identitystore.UpdateUserInput{IdentityStoreId: store, UserId: cu.UserId,
		Revision: cu.Revision,
		Operations: []types.AttributeOperation{
			{AttributePath: aws.String("displayName"), AttributeValue: document.NewLazyDocument("Renamed")},
			{AttributePath: aws.String("name.givenName"), AttributeValue: document.NewLazyDocument("Manny")},
		}})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if _, err := is.UpdateUser(ctx, &identitystore.UpdateUserInput{IdentityStoreId: store, UserId: cu.UserId,
		Revision: cu.Revision, Operations: []types.AttributeOperation{
			{AttributePath: aws.String("title"), AttributeValue: document.NewLazyDocument("x")}}}); !errors.As(err, &ce) {
		t.Errorf("UpdateUser with a stale revision: %v, want ConflictException", err)
	}
	d, _ := srv.Emu.Dump()
	if u, _ := d.UserByUserName("manual"); u.DisplayName != "Renamed" || u.GivenName != "Manny" || u.CreatedBy != "identitystore" ||
		fmt.Sprint(u.Revision) != aws.ToString(up.Revision) {
		t.Errorf("after UpdateUser: %+v (revision %s)", u, aws.ToString(up.Revision))
	}

	if _, err := is.DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{IdentityStoreId: store,
		MembershipId: cm.MembershipId}); err != nil {
		t.Errorf("DeleteGroupMembership: %v", err)
	}
	if _, err := is.DeleteGroup(ctx, &identitystore.DeleteGroupInput{IdentityStoreId: store, GroupId: cg.GroupId}); err != nil {
		t.Errorf("DeleteGroup: %v", err)
	}
	if _, err := is.DeleteUser(ctx, &identitystore.DeleteUserInput{IdentityStoreId: store, UserId: cu.UserId}); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := is.DeleteUser(ctx, &identitystore.DeleteUserInput{IdentityStoreId: store, UserId: cu.UserId}); !errors.As(err, &nf) {
		t.Errorf("second DeleteUser: %v, want ResourceNotFoundException", err)
	}
	if d, _ := srv.Emu.Dump(); d.Counts() != "users=0 groups=0 memberships=0" {
		t.Errorf("after deletes: %s", d.Counts())
	}
}

func TestIdentityStoreThrottling(t *testing.T) {
	srv, _ := start(t, emulator.Options{RateLimit: 1, Burst: 1})
	is := sdkClient(srv, 1)
	in := &identitystore.ListGroupsInput{IdentityStoreId: aws.String(srv.StoreID)}
	if _, err := is.ListGroups(context.Background(), in); err != nil {
		t.Fatalf("first call: %v", err)
	}
	_, err := is.ListGroups(context.Background(), in)
	var te *types.ThrottlingException
	if !errors.As(err, &te) || aws.ToString(te.Message) != "Rate exceeded" || te.RetryAfterSeconds < 1 {
		t.Fatalf("second call: %v, want ThrottlingException with RetryAfterSeconds", err)
	}
	if st := srv.Emu.Stats(); st["throttled"] != 1 {
		t.Errorf("stats = %v", st)
	}
}
