package cloudtrail

import "strings"

// IdentityFromARN classifies the principal an IAM or STS ARN names, the way a CloudTrail
// record's userIdentity would: for commands that start from a caller (sts:GetCallerIdentity,
// or an ARN a person typed) instead of a record. An assumed-role session ARN gives the role
// with PathUnknown set, since the path is not in a session ARN; an ARN it does not know gives
// KindUnknown.
func IdentityFromARN(s string) Identity {
	id := Identity{SessionARN: s}
	if strings.Contains(s, ":assumed-role/") || strings.Contains(s, ":federated-user/") {
		id.Type = "AssumedRole"
		if strings.Contains(s, ":federated-user/") {
			id.Type = "FederatedUser"
		}
	}
	fromARN(&id, s)
	switch id.Kind {
	case "":
		id.Kind, id.NotEditable = KindUnknown, whyUnknown
	case KindUser:
		id.Type = "IAMUser"
	case KindRoot:
		id.Type = "Root"
	case KindRole, KindSSORole, KindServiceLinkedRole:
		if id.Type == "" {
			id.Type = "AssumedRole"
		}
	}
	return id
}
