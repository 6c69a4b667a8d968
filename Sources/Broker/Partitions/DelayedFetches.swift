import KafkaProtocol
import LogStorage
import NIOCore
import Synchronization

/// Fetches that wait for data (long poll: MaxWaitMs / MinBytes). A waiter is woken when any
/// partition it reads gets an append, re-reads on its own event loop, and answers when it has
/// MinBytes or its wait is over.
final class DelayedFetches: Sendable {
    final class Waiter: Sendable {
        let eventLoop: EventLoop
        let partitions: [TopicPartition]
        /// A follower's replica fetch (not a consumer's).
        let isFollower: Bool
        private let attempt: @Sendable (Bool) -> KafkaResponse?
        private let promise: EventLoopPromise<KafkaResponse>
        private let done = Atomic<Bool>(false)

        init(eventLoop: EventLoop, partitions: [TopicPartition], isFollower: Bool = false, promise: EventLoopPromise<KafkaResponse>,
             attempt: @escaping @Sendable (Bool) -> KafkaResponse?) {
            self.eventLoop = eventLoop
            self.partitions = partitions
            self.isFollower = isFollower
            self.promise = promise
            self.attempt = attempt
        }

        /// Re-reads; answers if satisfied (or `force`d at the deadline). Returns true when done.
        @discardableResult
        func tryComplete(force: Bool) -> Bool {
            if done.load(ordering: .acquiring) { return true }
            guard let response = attempt(force) else { return false }
            if done.exchange(true, ordering: .acquiringAndReleasing) { return true }
            promise.succeed(response)
            return true
        }
    }

    private let waiters = Mutex<[TopicPartition: [ObjectIdentifier: Waiter]]>([:])

    func add(_ waiter: Waiter, maxWait: TimeAmount) {
        waiters.withLock { map in
            for tp in waiter.partitions { map[tp, default: [:]][ObjectIdentifier(waiter)] = waiter }
        }
        waiter.eventLoop.scheduleTask(in: maxWait) { [self] in
            waiter.tryComplete(force: true)
            remove(waiter)
        }
    }

    private func remove(_ waiter: Waiter) {
        waiters.withLock { map in
            for tp in waiter.partitions {
                map[tp]?.removeValue(forKey: ObjectIdentifier(waiter))
                if map[tp]?.isEmpty == true { map.removeValue(forKey: tp) }
            }
        }
    }

    /// This broker started leading partitions: waiting follower fetches are answered now, so each
    /// follower's next fetch can carry the new partitions (instead of after replica.fetch.wait.max.ms,
    /// which every first acks=all write to a new topic would wait for).
    func completeFollowerFetches() {
        let followers = waiters.withLock { map -> [Waiter] in
            var seen = Set<ObjectIdentifier>()
            return map.values.flatMap(\.values).filter { $0.isFollower && seen.insert(ObjectIdentifier($0)).inserted }
        }
        for waiter in followers {
            waiter.eventLoop.execute { [self] in
                waiter.tryComplete(force: true)
                remove(waiter)
            }
        }
    }

    /// Called after an append (or a high watermark move) on `partition`.
    func wake(_ partition: TopicPartition) {
        let interested = waiters.withLock { $0[partition].map { Array($0.values) } ?? [] }
        for waiter in interested {
            waiter.eventLoop.execute { [self] in
                if waiter.tryComplete(force: false) { remove(waiter) }
            }
        }
    }
}
