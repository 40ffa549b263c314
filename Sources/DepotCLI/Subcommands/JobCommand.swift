import ArgumentParser
import DepotCore

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "List, show and cancel long-running jobs (copies, flattens, merges).",
        subcommands: [JobListCommand.self, JobShow.self, JobCancel.self])
}

struct JobListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let jobs = try await global.client().jobs()
            if global.json { try Output.json(JobList(jobs: jobs)) } else { print(Output.jobTable(jobs)) }
        }
    }
}

struct JobShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one job.")
    @Argument(help: "job ID") var id: String
    @Flag(help: "Wait for it to finish, showing its progress.") var wait = false
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            var job = try await client.job(id)
            if wait, !job.state.isFinished { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json { try Output.json(job) } else { print(Output.jobDetail(job)) }
        }
    }
}

struct JobCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a running job; what it worked from is left as it was.")
    @Argument(help: "job ID") var id: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let job = try await global.client().cancelJob(id)
            if global.json { try Output.json(job) } else { print("job \(id) cancel requested") }
        }
    }
}
