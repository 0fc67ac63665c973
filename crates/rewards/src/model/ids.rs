//! The rewards module's ids.

kernel::id_type!(
    /// An event that hands out rewards.
    EventId
);

kernel::id_type!(
    /// A reward in the catalogue.
    RewardId
);

kernel::id_type!(
    /// A reward attached to an event, with its condition and stock.
    EventRewardId
);

kernel::id_type!(
    /// One user's attempt to claim an event reward, successful or not.
    RewardRequestId
);
