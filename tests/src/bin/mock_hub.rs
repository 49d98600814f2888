//! A standalone local model hub for end-to-end tests: Hugging Face and ModelScope API shapes and a
//! CDN host. `mock-hub --file OWNER/REPO:PATH=LOCAL_FILE ...`; prints `hub http://ADDR cdn http://ADDR`;
//! faults with `POST /_mock/faults {"throttle_bps":..., "cut_after":..., "cut_times":..., "corrupt_next":...}`.

use std::collections::BTreeMap;

use burncloud_tests::hub_mock::{HubMock, MockRepo};
use bytes::Bytes;

fn main() -> anyhow::Result<()> {
    let mut repos: BTreeMap<String, Vec<(String, Bytes)>> = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--file" => {
                let spec = args.next().ok_or_else(|| anyhow::anyhow!("--file needs OWNER/REPO:PATH=LOCAL_FILE"))?;
                let (remote, local) = spec
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--file {spec}: expected OWNER/REPO:PATH=LOCAL_FILE"))?;
                let (repo, path) =
                    remote.split_once(':').ok_or_else(|| anyhow::anyhow!("--file {spec}: expected OWNER/REPO:PATH"))?;
                let bytes = std::fs::read(local).map_err(|e| anyhow::anyhow!("cannot read {local}: {e}"))?;
                repos.entry(repo.to_string()).or_default().push((path.to_string(), Bytes::from(bytes)));
            }
            other => anyhow::bail!("unknown argument {other:?}; usage: mock-hub --file OWNER/REPO:PATH=LOCAL_FILE ..."),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let hub = HubMock::start().await;
        for (repo, files) in repos {
            hub.add_repo(&repo, MockRepo::new(files));
        }
        println!("hub http://{} cdn http://{}", hub.hub_address, hub.cdn_address);
        std::future::pending::<()>().await;
        anyhow::Ok(())
    })
}
