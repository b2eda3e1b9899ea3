//! Wiring for Velero's requests: one kube-runtime Controller for DataUploads (woken by the
//! VolumeSnapshotBackups it owns) and one for DataDownloads (woken by its
//! ReplicationDestinations). Each runs only when switched on and Velero's CRD is installed.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, future};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::runtime::{Controller, WatchStreamExt, controller, reflector, watcher};
use lifeline_api::datamover::VolumeSnapshotBackup;
use lifeline_api::foreign::velero::{DataDownload, DataUpload};
use lifeline_api::foreign::volsync::ReplicationDestination;

use crate::context::Context;
use crate::controller::{Readiness, working};
use crate::reconcile::{download, error_policy, upload};

/// The CRDs of the two kinds, by name (the controller may only `get` these).
pub const UPLOADS_CRD: &str = "datauploads.velero.io";
pub const DOWNLOADS_CRD: &str = "datadownloads.velero.io";

/// Which of Velero's kinds to serve: switched on, and their CRD is there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub uploads: bool,
    pub downloads: bool,
}

impl Served {
    pub fn count(self) -> usize {
        usize::from(self.uploads) + usize::from(self.downloads)
    }
}

/// Whether a switched-on kind can be served; logs why not. A missing CRD is no error: Velero
/// may not be installed; a restart picks it up once it is.
pub async fn served(ctx: &Context, uploads: bool, downloads: bool) -> Served {
    let crds = Api::<CustomResourceDefinition>::all(ctx.client.clone());
    let check = async |on: bool, crd: &str| {
        if !on {
            tracing::info!(crd, "switched off");
            return false;
        }
        match crds.get_opt(crd).await {
            Ok(Some(_)) => true,
            Ok(None) => {
                tracing::warn!(
                    crd,
                    "Velero's CRD is not installed: not served (restart the data mover once Velero is installed)"
                );
                false
            }
            Err(error) => {
                tracing::warn!(crd, %error, "cannot tell whether Velero's CRD is installed: not served");
                false
            }
        }
    };
    Served {
        uploads: check(uploads, UPLOADS_CRD).await,
        downloads: check(downloads, DOWNLOADS_CRD).await,
    }
}

/// Runs the served controllers until `shutdown` resolves.
pub(crate) async fn run(
    ctx: &Arc<Context>,
    served: Served,
    config: controller::Config,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
    readiness: &Arc<Readiness>,
) {
    let client = ctx.client.clone();
    let protected = ctx.settings.protected_namespace.as_deref();
    let uploads = served.uploads.then(|| {
        let (reader, writer) = reflector::store::<DataUpload>();
        let stream = watcher(
            working::<DataUpload>(&client, protected),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(writer)
        .inspect_ok(readiness.on_init_done())
        .applied_objects();
        Controller::for_stream(stream, reader)
            .owns(
                working::<VolumeSnapshotBackup>(&client, protected),
                watcher::Config::default(),
            )
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(upload::reconcile, error_policy, Arc::clone(ctx))
            .for_each(|_| future::ready(()))
    });
    let downloads = served.downloads.then(|| {
        let (reader, writer) = reflector::store::<DataDownload>();
        let stream = watcher(
            working::<DataDownload>(&client, protected),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(writer)
        .inspect_ok(readiness.on_init_done())
        .applied_objects();
        Controller::for_stream(stream, reader)
            .owns(
                working::<ReplicationDestination>(&client, protected),
                watcher::Config::default(),
            )
            .with_config(config)
            .graceful_shutdown_on(shutdown)
            .run(download::reconcile, error_policy, Arc::clone(ctx))
            .for_each(|_| future::ready(()))
    });
    let uploads = async move {
        if let Some(run) = uploads {
            run.await;
        }
    };
    let downloads = async move {
        if let Some(run) = downloads {
            run.await;
        }
    };
    tokio::join!(uploads, downloads);
}
