//! The pages the window and the browser UI both show, and the services they call.

use burncloud_client::{AppInfo, Page, Services};
use burncloud_server::AppState;

/// Every page, in navigation order.
pub fn pages() -> Vec<Page> {
    vec![
        Page { id: "dashboard", title: "nav.dashboard", icon: "◎", render: burncloud_client_dashboard::Dashboard },
        Page { id: "logs", title: "nav.logs", icon: "≡", render: burncloud_client_dashboard::Logs },
        Page { id: "channels", title: "nav.channels", icon: "⇄", render: burncloud_client_settings::Channels },
        Page { id: "groups", title: "nav.groups", icon: "⊞", render: burncloud_client_settings::Groups },
        Page { id: "tokens", title: "nav.tokens", icon: "✦", render: burncloud_client_settings::Tokens },
        Page { id: "prices", title: "nav.prices", icon: "¤", render: burncloud_client_settings::Prices },
        Page { id: "models", title: "nav.models", icon: "▣", render: burncloud_client_models::Models },
        Page { id: "deployments", title: "nav.deployments", icon: "▶", render: burncloud_client_models::Deployments },
        Page {
            id: "playground", title: "nav.playground", icon: "✎", render: burncloud_client_playground::Playground
        },
        Page { id: "settings", title: "nav.settings", icon: "⚙", render: burncloud_client_settings::Settings },
    ]
}

/// The running app's services, as the pages reach them.
pub fn services(state: &AppState, info: AppInfo) -> Services {
    Services::from_store(
        state.store.clone(),
        state.monitor.clone(),
        state.admin_keys.clone(),
        state.models.clone(),
        state.inference.clone(),
        state.playground.clone(),
        info,
    )
}
