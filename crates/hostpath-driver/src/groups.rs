//! The csi-addons volume group service: groups of this site's volumes, which the replication
//! service then replicates as one unit (`site.rs`, `transfer.rs`: one capture, one sync, all
//! members swapped in together).

use lifeline_csi_client::proto::csi::v1 as csi;
use lifeline_csi_client::proto::volumegroup as vg;
use lifeline_csi_client::server::VolumeGroupController;
use tonic::{Request, Response, Status};

use crate::service::Service;
use crate::store::GroupDef;

fn answer(id: &str, def: &GroupDef) -> vg::VolumeGroup {
    vg::VolumeGroup {
        volume_group_id: id.to_owned(),
        volume_group_context: [("name".to_owned(), def.name.clone())].into(),
        volumes: def
            .members
            .iter()
            .map(|v| csi::Volume {
                volume_id: v.clone(),
                ..Default::default()
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl VolumeGroupController for Service {
    async fn create_volume_group(
        &self,
        r: Request<vg::CreateVolumeGroupRequest>,
    ) -> Result<Response<vg::CreateVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.admit("CreateVolumeGroup", &r.secrets).await?;
        let (id, def) = self
            .site
            .create_group(&r.name, r.volume_ids, r.parameters)?;
        tracing::info!(
            group = id,
            members = def.members.len(),
            "volume group created"
        );
        Ok(Response::new(vg::CreateVolumeGroupResponse {
            volume_group: Some(answer(&id, &def)),
        }))
    }

    async fn modify_volume_group_membership(
        &self,
        r: Request<vg::ModifyVolumeGroupMembershipRequest>,
    ) -> Result<Response<vg::ModifyVolumeGroupMembershipResponse>, Status> {
        let r = r.into_inner();
        self.admit("ModifyVolumeGroupMembership", &r.secrets)
            .await?;
        crate::site::valid_id(&r.volume_group_id)?;
        let def = self.site.modify_group(&r.volume_group_id, r.volume_ids)?;
        tracing::info!(
            group = r.volume_group_id,
            members = def.members.len(),
            "volume group changed"
        );
        Ok(Response::new(vg::ModifyVolumeGroupMembershipResponse {
            volume_group: Some(answer(&r.volume_group_id, &def)),
        }))
    }

    async fn delete_volume_group(
        &self,
        r: Request<vg::DeleteVolumeGroupRequest>,
    ) -> Result<Response<vg::DeleteVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.admit("DeleteVolumeGroup", &r.secrets).await?;
        crate::site::valid_id(&r.volume_group_id)?;
        self.site.delete_group(&r.volume_group_id)?;
        tracing::info!(group = r.volume_group_id, "volume group deleted");
        Ok(Response::new(vg::DeleteVolumeGroupResponse {}))
    }

    async fn list_volume_groups(
        &self,
        r: Request<vg::ListVolumeGroupsRequest>,
    ) -> Result<Response<vg::ListVolumeGroupsResponse>, Status> {
        let r = r.into_inner();
        self.admit("ListVolumeGroups", &r.secrets).await?;
        let groups = self.site.groups()?;
        // The token is the id of the first group of the page (groups are listed by id).
        let start = groups
            .iter()
            .position(|(id, _)| r.starting_token.is_empty() || *id >= r.starting_token)
            .unwrap_or(groups.len());
        if !r.starting_token.is_empty() && start == groups.len() && !groups.is_empty() {
            return Err(Status::aborted(format!(
                "starting_token {:?} is past the last group",
                r.starting_token
            )));
        }
        let size = usize::try_from(r.max_entries)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(usize::MAX);
        let page: Vec<_> = groups.iter().skip(start).take(size).collect();
        let next_token = groups
            .get(start + page.len())
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        Ok(Response::new(vg::ListVolumeGroupsResponse {
            entries: page
                .into_iter()
                .map(|(id, def)| vg::list_volume_groups_response::Entry {
                    volume_group: Some(answer(id, def)),
                })
                .collect(),
            next_token,
        }))
    }

    async fn controller_get_volume_group(
        &self,
        r: Request<vg::ControllerGetVolumeGroupRequest>,
    ) -> Result<Response<vg::ControllerGetVolumeGroupResponse>, Status> {
        let r = r.into_inner();
        self.admit("ControllerGetVolumeGroup", &r.secrets).await?;
        crate::site::valid_id(&r.volume_group_id)?;
        let def = self.site.group(&r.volume_group_id)?;
        Ok(Response::new(vg::ControllerGetVolumeGroupResponse {
            volume_group: Some(answer(&r.volume_group_id, &def)),
        }))
    }
}
