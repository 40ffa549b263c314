import ArgumentParser

struct TargetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target", abstract: "iSCSI targets: create, list, show, delete; LUN maps and ACLs.",
        subcommands: [
            TargetCreate.self, TargetListCommand.self, TargetShow.self, TargetDelete.self, TargetLUNCommand.self,
            TargetACLCommand.self, TargetCHAPCommand.self, TargetPortalCommand.self, TargetPortalGroupCommand.self,
        ])
}

struct TargetLUNCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lun", abstract: "Map and unmap volumes as LUNs.",
        subcommands: [TargetLUNMap.self, TargetLUNUnmap.self])
}

struct TargetACLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl", abstract: "Initiators allowed to log in.",
        subcommands: [TargetACLAdd.self, TargetACLRemove.self])
}

struct TargetCHAPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chap", abstract: "Require CHAP (one-way or mutual) for logins.",
        subcommands: [TargetCHAPSet.self, TargetCHAPClear.self])
}

struct TargetPortalGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal-group", abstract: "ALUA portal groups (one per portal) and their access states.",
        subcommands: [TargetPortalGroupList.self, TargetPortalGroupSetState.self])
}

struct TargetPortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal", abstract: "The daemon portals a target is served on.",
        subcommands: [TargetPortalSet.self])
}
