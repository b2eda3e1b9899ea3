//! The volume group service (`volumegroup.Controller`): a driver's groups of volumes, which
//! the replication calls then address as one [`crate::Target::VolumeGroup`].

use std::collections::BTreeMap;

use crate::proto::volumegroup as pb;
use crate::proto::volumegroup::controller_client::ControllerClient;
use crate::{CsiClient, CsiError, Method, Secrets};

/// A group as the driver describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeGroup {
    pub id: String,
    pub context: BTreeMap<String, String>,
    /// The member volumes' ids, in the driver's order.
    pub volume_ids: Vec<String>,
}

impl From<pb::VolumeGroup> for VolumeGroup {
    fn from(g: pb::VolumeGroup) -> Self {
        Self {
            id: g.volume_group_id,
            context: g.volume_group_context,
            volume_ids: g.volumes.into_iter().map(|v| v.volume_id).collect(),
        }
    }
}

/// An answer that should carry a group and did not: the driver broke the contract.
fn group(method: Method, g: Option<pb::VolumeGroup>) -> Result<VolumeGroup, CsiError> {
    g.map(Into::into)
        .ok_or_else(|| CsiError::malformed(method, "the answer has no volume_group"))
}

/// One page of [`CsiClient::list_volume_groups`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupPage {
    pub groups: Vec<VolumeGroup>,
    /// Empty on the last page.
    pub next_token: String,
}

impl CsiClient {
    fn group_stub(&self) -> ControllerClient<tonic::transport::Channel> {
        ControllerClient::new(self.channel())
    }

    /// Creates the group `name` of `volume_ids` (idempotent on `name`).
    pub async fn create_volume_group(
        &self,
        name: &str,
        volume_ids: &[String],
        parameters: &BTreeMap<String, String>,
        secrets: &Secrets,
    ) -> Result<VolumeGroup, CsiError> {
        let request = self.request(pb::CreateVolumeGroupRequest {
            name: name.to_owned(),
            parameters: parameters.clone(),
            secrets: secrets.expose().clone(),
            volume_ids: volume_ids.to_vec(),
        });
        let mut stub = self.group_stub();
        let answer = self
            .call(
                Method::CreateVolumeGroup,
                name,
                stub.create_volume_group(request),
            )
            .await?;
        group(Method::CreateVolumeGroup, answer.volume_group)
    }

    /// Makes `volume_ids` the group's complete member list.
    pub async fn modify_volume_group_membership(
        &self,
        id: &str,
        volume_ids: &[String],
        parameters: &BTreeMap<String, String>,
        secrets: &Secrets,
    ) -> Result<VolumeGroup, CsiError> {
        let request = self.request(pb::ModifyVolumeGroupMembershipRequest {
            volume_group_id: id.to_owned(),
            volume_ids: volume_ids.to_vec(),
            secrets: secrets.expose().clone(),
            parameters: parameters.clone(),
        });
        let mut stub = self.group_stub();
        let answer = self
            .call(
                Method::ModifyVolumeGroupMembership,
                id,
                stub.modify_volume_group_membership(request),
            )
            .await?;
        group(Method::ModifyVolumeGroupMembership, answer.volume_group)
    }

    /// Deletes the group (its volumes stay).
    pub async fn delete_volume_group(&self, id: &str, secrets: &Secrets) -> Result<(), CsiError> {
        let request = self.request(pb::DeleteVolumeGroupRequest {
            volume_group_id: id.to_owned(),
            secrets: secrets.expose().clone(),
        });
        let mut stub = self.group_stub();
        self.call(
            Method::DeleteVolumeGroup,
            id,
            stub.delete_volume_group(request),
        )
        .await
        .map(drop)
    }

    pub async fn get_volume_group(
        &self,
        id: &str,
        secrets: &Secrets,
    ) -> Result<VolumeGroup, CsiError> {
        let request = self.request(pb::ControllerGetVolumeGroupRequest {
            volume_group_id: id.to_owned(),
            secrets: secrets.expose().clone(),
        });
        let mut stub = self.group_stub();
        let answer = self
            .call(
                Method::ControllerGetVolumeGroup,
                id,
                stub.controller_get_volume_group(request),
            )
            .await?;
        group(Method::ControllerGetVolumeGroup, answer.volume_group)
    }

    /// One page of the driver's groups: at most `max_entries` (0: the driver's choice), from
    /// `starting_token` (empty: the first page).
    pub async fn list_volume_groups(
        &self,
        max_entries: i32,
        starting_token: &str,
        secrets: &Secrets,
    ) -> Result<GroupPage, CsiError> {
        let request = self.request(pb::ListVolumeGroupsRequest {
            max_entries,
            starting_token: starting_token.to_owned(),
            secrets: secrets.expose().clone(),
        });
        let mut stub = self.group_stub();
        let answer = self
            .call(
                Method::ListVolumeGroups,
                "",
                stub.list_volume_groups(request),
            )
            .await?;
        Ok(GroupPage {
            groups: answer
                .entries
                .into_iter()
                .filter_map(|e| e.volume_group.map(Into::into))
                .collect(),
            next_token: answer.next_token,
        })
    }
}
