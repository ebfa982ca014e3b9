//! Cascading a room across nodes. A room's node serves its first `--cascade-after`
//! participants itself; a further WHEP viewer is sent (307) to the least-loaded other node,
//! marked `spilled=1`, and a node asked for a room that is past that size (or that it already
//! pulls, or spilled to it) serves the viewer itself: it pulls the room from its node **once**,
//! as a WHEP viewer there with a node credential, and fans it out to its own viewers
//! ([`crate::media::pull`]). A node's pull is never spilled.

use super::{Cluster, REDIS_WAIT, Route, placement, registry};

/// The query parameter a room's node adds when it sends a viewer elsewhere.
pub const SPILLED: &str = "spilled=1";

/// Where a WHEP viewer is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewing {
    /// By this node, which hosts the room (or there is no cluster).
    Local,
    /// By node `node`: answer 307 with `location`.
    Redirect { node: String, location: String },
    /// By this node, pulling the room from node `node` (public base URL `url`).
    Pull { node: String, url: String },
}

impl Cluster {
    /// Where a WHEP viewer of `room` is served. `path_and_query` is the request's, `pull`
    /// whether it is another node's pull, `spilled` whether the room's node sent it here.
    pub async fn viewing(
        &self,
        room: &str,
        path_and_query: &str,
        pull: bool,
        spilled: bool,
    ) -> Viewing {
        let route = self.route(room).await;
        let Some(inner) = &self.0 else {
            return Viewing::Local;
        };
        let after = inner.cascade_after;
        match route {
            Route::Remote { node, url, .. } if after == 0 || pull => Viewing::Redirect {
                location: format!("{url}{path_and_query}"),
                node,
            },
            Route::Remote { node, url, size } => {
                let pulling = inner.media.pulls().iter().any(|p| p.room == room);
                if spilled || pulling || size >= after {
                    Viewing::Pull { node, url }
                } else {
                    Viewing::Redirect {
                        location: format!("{url}{path_and_query}"),
                        node,
                    }
                }
            }
            Route::Local if after == 0 || pull => Viewing::Local,
            Route::Local => {
                let here = inner
                    .media
                    .rooms()
                    .into_iter()
                    .find(|(r, _)| r == room)
                    .map_or(0, |(_, n)| n);
                if here < after {
                    return Viewing::Local;
                }
                match self.least_loaded_other().await {
                    Some((node, url)) => {
                        let sep = if path_and_query.contains('?') {
                            '&'
                        } else {
                            '?'
                        };
                        Viewing::Redirect {
                            location: format!("{url}{path_and_query}{sep}{SPILLED}"),
                            node,
                        }
                    }
                    None => Viewing::Local,
                }
            }
        }
    }

    /// The live node other than this one with the least load, if any.
    async fn least_loaded_other(&self) -> Option<(String, String)> {
        let inner = self.0.as_deref()?;
        let mut conn = inner.conn.get().cloned()?;
        let nodes = tokio::time::timeout(REDIS_WAIT, registry::live_nodes(&mut conn))
            .await
            .ok()?
            .ok()?;
        placement::least_loaded_other(&inner.id, &nodes).map(|n| (n.id.clone(), n.url.clone()))
    }
}
