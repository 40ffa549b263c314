import NIOCore

/// Runs a connection's tasks on the connection's own event loop (SE-0417 task
/// executor preference). A command then costs two thread switches — to the
/// I/O thread pool and back — instead of bouncing between the event loop and
/// Swift's cooperative pool at every await and every channel write. Nothing
/// that runs here blocks: file I/O goes to the I/O engine's threads.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
