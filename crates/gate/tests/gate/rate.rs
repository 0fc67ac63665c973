//! Rate limiters behave alike in memory and in Redis: a quota of N allows N
//! then refuses with a sane retry-after, peeking spends nothing, units
//! refill, keys are independent, and concurrent callers never get more than
//! the quota. In Redis, instances share each key's quota, keys expire once
//! they mean nothing, and a lost Redis leaves each instance limiting alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gate::{Quota, RateLimiter};
use tokio::sync::Barrier;

use crate::support::{Kind, Proxy, Store};

/// A limiter of this kind over a store of its own.
async fn limiter(kind: Kind) -> Arc<dyn RateLimiter> {
    Store::open(kind).await.limiter().await
}

on_every_limiter!(a_burst_is_allowed_then_refused_with_a_wait);
async fn a_burst_is_allowed_then_refused_with_a_wait(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(3, Duration::from_secs(60));
    for _ in 0..3 {
        assert!(limiter.acquire("k", quota).await.is_ok());
    }

    let refused = limiter
        .acquire("k", quota)
        .await
        .expect_err("fourth is over the burst");

    assert!(refused.retry_after > Duration::from_secs(19));
    assert!(refused.retry_after <= Duration::from_secs(20));
    assert_eq!(refused.retry_after_secs(), 20);
}

on_every_limiter!(a_refused_acquire_spends_nothing);
async fn a_refused_acquire_spends_nothing(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(1, Duration::from_secs(60));
    limiter.acquire("k", quota).await.expect("the one allowed");

    let first = limiter.acquire("k", quota).await.expect_err("over");
    for _ in 0..10 {
        let _ = limiter.acquire("k", quota).await;
    }
    let later = limiter.acquire("k", quota).await.expect_err("still over");

    assert!(
        later.retry_after <= first.retry_after,
        "{later:?} > {first:?}"
    );
}

on_every_limiter!(keys_are_independent);
async fn keys_are_independent(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(1, Duration::from_secs(60));
    assert!(limiter.acquire("a", quota).await.is_ok());
    assert!(limiter.acquire("a", quota).await.is_err());
    assert!(limiter.acquire("b", quota).await.is_ok());
}

on_every_limiter!(peek_spends_nothing);
async fn peek_spends_nothing(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(1, Duration::from_secs(60));
    for _ in 0..5 {
        assert!(limiter.peek("k", quota).await.is_ok());
    }
    assert!(limiter.acquire("k", quota).await.is_ok());
    assert!(limiter.peek("k", quota).await.is_err());
}

on_every_limiter!(units_refill_over_time);
async fn units_refill_over_time(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(2, Duration::from_millis(100));
    assert!(limiter.acquire("k", quota).await.is_ok());
    assert!(limiter.acquire("k", quota).await.is_ok());
    assert!(limiter.acquire("k", quota).await.is_err());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(limiter.acquire("k", quota).await.is_ok());
}

on_every_limiter!(concurrent_callers_get_exactly_the_burst);
async fn concurrent_callers_get_exactly_the_burst(kind: Kind) {
    let limiter = limiter(kind).await;
    let quota = Quota::per_period(25, Duration::from_secs(60));

    let allowed = rush(&[limiter], "k", quota, 200).await;

    assert_eq!(allowed, 25);
}

/// `calls` acquires at once, taking turns between the limiters; how many
/// were allowed.
async fn rush(limiters: &[Arc<dyn RateLimiter>], key: &str, quota: Quota, calls: usize) -> usize {
    let start = Arc::new(Barrier::new(calls));
    let allowed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let limiter = Arc::clone(&limiters[i % limiters.len()]);
            let (start, allowed, key) = (Arc::clone(&start), Arc::clone(&allowed), key.to_owned());
            tokio::spawn(async move {
                start.wait().await;
                if limiter.acquire(&key, quota).await.is_ok() {
                    allowed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task ran to the end");
    }
    allowed.load(Ordering::SeqCst)
}

on_backends!(two_instances_share_each_key_s_quota: redis);
async fn two_instances_share_each_key_s_quota(kind: Kind) {
    let store = Store::open(kind).await;
    let limiters = [store.limiter().await, store.limiter().await];
    let quota = Quota::per_period(10, Duration::from_secs(60));

    let allowed = rush(&limiters, "login:ann@example.com", quota, 100).await;

    assert_eq!(allowed, 10, "one quota for both instances");
    for limiter in &limiters {
        assert!(limiter.peek("login:ann@example.com", quota).await.is_err());
        assert!(limiter.peek("login:bob@example.com", quota).await.is_ok());
    }
}

on_backends!(a_key_expires_once_its_bucket_is_full_again: redis);
async fn a_key_expires_once_its_bucket_is_full_again(kind: Kind) {
    let Kind::Redis(url) = kind.clone() else {
        unreachable!("a Redis test")
    };
    let store = Store::open(kind).await;
    let limiter = store.limiter().await;
    let key = format!("{}:rate:k", store.prefix());
    let mut redis = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("Redis is reachable");
    let ttl_ms = |redis: &mut redis::Connection| -> i64 {
        redis::cmd("PTTL")
            .arg(&key)
            .query(redis)
            .expect("PTTL answers")
    };

    limiter
        .acquire("k", Quota::per_period(2, Duration::from_millis(400)))
        .await
        .expect("allowed");
    let ttl = ttl_ms(&mut redis);
    assert!(
        (1..=200).contains(&ttl),
        "one unit refills in 200 ms: {ttl}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ttl_ms(&mut redis), -2, "the key is gone");
    limiter
        .peek("k", Quota::per_period(2, Duration::from_millis(400)))
        .await
        .expect("peeking creates no key");
    assert_eq!(ttl_ms(&mut redis), -2);
}

on_backends!(a_silent_redis_leaves_each_instance_limiting_alone: redis);
async fn a_silent_redis_leaves_each_instance_limiting_alone(kind: Kind) {
    let Kind::Redis(url) = kind else {
        unreachable!("a Redis test")
    };
    let proxy = Proxy::start(&url).await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let limiter = gate::RedisRateLimiter::connect(&proxy.url, &prefix)
        .await
        .expect("Redis through the proxy");
    let quota = Quota::per_period(2, Duration::from_secs(60));
    limiter.acquire("k", quota).await.expect("through Redis");

    proxy.freeze();
    let began = Instant::now();
    let answers = [
        limiter.acquire("k", quota).await,
        limiter.acquire("k", quota).await,
        limiter.acquire("k", quota).await,
    ];

    assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
    assert!(answers[2].is_err(), "the fallback holds its own quota");
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "each call waits at most the response timeout: {:?}",
        began.elapsed()
    );
    proxy.thaw();
}
