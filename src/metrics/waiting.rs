//! The waiting room's metrics: contests drawn per route, entrants per contest, how long requests
//! were held, and how many are held now.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::RouteLabels;

#[derive(Clone)]
pub struct WaitingRoom {
    contests: Family<RouteLabels, Counter>,
    entrants: Histogram,
    wait: Histogram,
    held: Gauge,
}

impl WaitingRoom {
    pub fn register(registry: &mut Registry) -> WaitingRoom {
        let w = WaitingRoom {
            contests: Family::default(),
            // 1 … 4096 people.
            entrants: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            // 50 ms … ~100 s.
            wait: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            held: Gauge::default(),
        };
        registry.register(
            "waiting_room_contests",
            "Waiting-room contests drawn (counted by the replica that recorded the draw), by route",
            w.contests.clone(),
        );
        registry.register(
            "waiting_room_entrants",
            "People in the draw of each waiting-room contest",
            w.entrants.clone(),
        );
        registry.register(
            "waiting_room_wait_seconds",
            "How long requests were held in a waiting room before going upstream",
            w.wait.clone(),
        );
        registry.register("waiting_room_held", "Requests held in a waiting room now", w.held.clone());
        w
    }

    /// A route with a waiting room: its counter is exported from the start.
    pub fn route(&self, route: &str) {
        drop(self.contests.get_or_create(&RouteLabels { route: route.to_string() }));
    }

    /// A contest's draw, recorded.
    pub fn contest(&self, route: &str, entrants: u64) {
        self.contests.get_or_create(&RouteLabels { route: route.to_string() }).inc();
        self.entrants.observe(entrants as f64);
    }

    /// A held request went upstream (or gave up) after `seconds`.
    pub fn waited(&self, seconds: f64) {
        self.wait.observe(seconds);
    }

    /// One more (`+1`) or one fewer (`-1`) request held.
    pub fn held(&self, delta: i64) {
        self.held.inc_by(delta);
    }
}
