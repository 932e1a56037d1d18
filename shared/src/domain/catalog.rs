//! The event catalog: Logto's hook event names, exactly, in one place.
//! Everything else (validation, subscriptions, `GET /api/hook-events`) derives from this list.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! catalog {
    (
        events { $( $variant:ident => $name:literal, $group:literal; )* }
        operational { $( $op:ident => $op_name:literal; )* }
    ) => {
        /// One event name: of the catalog, or one of the product's operational notices.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventName { $($variant,)* $($op,)* }

        impl EventName {
            /// Every event of the catalog, in catalog order.
            pub const ALL: &'static [EventName] = &[$(EventName::$variant),*];

            /// The notices sent to the operational endpoint; no hook subscribes to them and
            /// no caller may post them.
            pub const OPERATIONAL: &'static [EventName] = &[$(EventName::$op),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventName::$variant => $name,)* $(EventName::$op => $op_name,)* }
            }

            /// The catalog group the event belongs to (`Interaction`, `User`, …).
            pub fn group(self) -> &'static str {
                match self { $(EventName::$variant => $group,)* $(EventName::$op => "Operational",)* }
            }

            /// An event of the catalog (what callers post and hooks subscribe to).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(EventName::$variant),)* _ => None }
            }

            /// Any event name, operational notices included (as stored with a delivery).
            pub fn parse_any(s: &str) -> Option<Self> {
                match s { $($op_name => Some(EventName::$op),)* _ => Self::parse(s) }
            }
        }
    };
}

catalog! {
    events {
        PostRegister => "PostRegister", "Interaction";
        PostSignIn => "PostSignIn", "Interaction";
        PostResetPassword => "PostResetPassword", "Interaction";
        PostSignInAdaptiveMfaTriggered => "PostSignInAdaptiveMfaTriggered", "Interaction";
        UserCreated => "User.Created", "User";
        UserDeleted => "User.Deleted", "User";
        UserDataUpdated => "User.Data.Updated", "User";
        UserSuspensionStatusUpdated => "User.SuspensionStatus.Updated", "User";
        TrustedDeviceCreated => "TrustedDevice.Created", "User";
        TrustedDeviceDeleted => "TrustedDevice.Deleted", "User";
        RoleCreated => "Role.Created", "Role";
        RoleDeleted => "Role.Deleted", "Role";
        RoleDataUpdated => "Role.Data.Updated", "Role";
        RoleScopesUpdated => "Role.Scopes.Updated", "Role";
        ScopeCreated => "Scope.Created", "Permission";
        ScopeDeleted => "Scope.Deleted", "Permission";
        ScopeDataUpdated => "Scope.Data.Updated", "Permission";
        OrganizationCreated => "Organization.Created", "Organization";
        OrganizationDeleted => "Organization.Deleted", "Organization";
        OrganizationDataUpdated => "Organization.Data.Updated", "Organization";
        OrganizationMembershipUpdated => "Organization.Membership.Updated", "Organization";
        OrganizationRoleCreated => "OrganizationRole.Created", "OrganizationRole";
        OrganizationRoleDeleted => "OrganizationRole.Deleted", "OrganizationRole";
        OrganizationRoleDataUpdated => "OrganizationRole.Data.Updated", "OrganizationRole";
        OrganizationRoleScopesUpdated => "OrganizationRole.Scopes.Updated", "OrganizationRole";
        OrganizationScopeCreated => "OrganizationScope.Created", "OrganizationPermission";
        OrganizationScopeDeleted => "OrganizationScope.Deleted", "OrganizationPermission";
        OrganizationScopeDataUpdated => "OrganizationScope.Data.Updated", "OrganizationPermission";
        IdentifierLockout => "Identifier.Lockout", "Exception";
        MessageRateLimited => "Message.RateLimited", "Exception";
        GrantLimitExceeded => "Grant.LimitExceeded", "Exception";
    }
    operational {
        HookFailingSince => "Hook.FailingSince";
        HookDisabled => "Hook.Disabled";
        HookRecovered => "Hook.Recovered";
    }
}

/// The `interactionEvent` values interaction events carry.
pub const INTERACTION_KINDS: &[&str] = &["Register", "SignIn", "ForgotPassword"];

/// The setting that turns on [`EventName::is_preview`] events.
pub const PREVIEW_SETTING: &str = "WEBHOOKS_PREVIEW_EVENTS";

impl EventName {
    /// Events Logto ships behind its dev-feature flag: callers may post them and hooks
    /// subscribe to them only with `WEBHOOKS_PREVIEW_EVENTS=true`.
    pub fn is_preview(self) -> bool {
        matches!(
            self,
            EventName::TrustedDeviceCreated | EventName::TrustedDeviceDeleted
        )
    }

    /// For interaction events, the `interactionEvent` implied by the name.
    pub fn implied_interaction(self) -> Option<&'static str> {
        match self {
            EventName::PostRegister => Some("Register"),
            EventName::PostSignIn | EventName::PostSignInAdaptiveMfaTriggered => Some("SignIn"),
            EventName::PostResetPassword => Some("ForgotPassword"),
            _ => None,
        }
    }

    pub fn is_interaction(self) -> bool {
        self.implied_interaction().is_some()
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventName::parse_any(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_every_logto_event_once() {
        assert_eq!(EventName::ALL.len(), 31);
        let preview: Vec<_> = EventName::ALL.iter().filter(|e| e.is_preview()).collect();
        assert_eq!(
            preview,
            [
                &EventName::TrustedDeviceCreated,
                &EventName::TrustedDeviceDeleted
            ]
        );
        let mut names: Vec<_> = EventName::ALL.iter().map(|e| e.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 31);
    }

    #[test]
    fn names_round_trip() {
        for e in EventName::ALL {
            assert_eq!(EventName::parse(e.as_str()), Some(*e));
            let json = serde_json::to_string(e).unwrap();
            assert_eq!(serde_json::from_str::<EventName>(&json).unwrap(), *e);
        }
        assert_eq!(EventName::parse("User.created"), None);
        for e in EventName::OPERATIONAL {
            assert_eq!(EventName::parse(e.as_str()), None, "not postable: {e}");
            assert_eq!(EventName::parse_any(e.as_str()), Some(*e));
            let json = serde_json::to_string(e).unwrap();
            assert_eq!(serde_json::from_str::<EventName>(&json).unwrap(), *e);
        }
        assert_eq!(EventName::parse(""), None);
    }

    #[test]
    fn interaction_events_imply_their_kind() {
        assert_eq!(
            EventName::PostResetPassword.implied_interaction(),
            Some("ForgotPassword")
        );
        assert!(EventName::PostSignInAdaptiveMfaTriggered.is_interaction());
        assert!(!EventName::UserCreated.is_interaction());
        let interaction = EventName::ALL.iter().filter(|e| e.is_interaction()).count();
        assert_eq!(interaction, 4);
    }
}
