import DepotCore

/// Renders exports for the two NFS servers. Both renderers refuse paths that
/// their file syntax could not carry safely.
public enum ExportRenderers {
    static func checkPath(_ path: String) throws(DepotError) {
        guard path.hasPrefix("/"),
            !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == "\"" || $0 == "\\" || $0.value == 0x7F })
        else {
            throw .unprocessable(
                "export path '\(path)' cannot be written to an exports file (quotes, backslashes or control characters)"
            )
        }
    }

    /// One line per pool in exports(5) syntax:
    /// `"PATH" CLIENT(rw,sync,no_subtree_check,root_squash,sec=sys,fsid=N) ...`
    ///
    /// `sync` (exports(5): reply only after changes are committed to stable
    /// storage), `no_subtree_check` (the whole pool directory is exported),
    /// `fsid=N` so file handles survive a server restart or a device renumbering.
    public static func kernel(_ export: ExportInfo) throws(DepotError) -> String {
        try checkPath(export.path)
        let clients = export.rules.map { rule in
            var options = [rule.access.rawValue, "sync", "no_subtree_check", rule.squash.exportsOption]
            if let uid = rule.anonuid { options.append("anonuid=\(uid)") }
            if let gid = rule.anongid { options.append("anongid=\(gid)") }
            options += ["sec=sys", "fsid=\(export.fsid)"]
            return "\(rule.client)(\(options.joined(separator: ",")))"
        }
        return """
            # Managed by depotd: NFS export of pool '\(export.pool)'. Changes here are overwritten.
            "\(export.path)" \(clients.joined(separator: " "))

            """
    }

    /// NFS-Ganesha `EXPORT` blocks for every export, VFS FSAL.
    ///
    /// The export itself grants nothing (`Access_Type = None`); each `CLIENT`
    /// block grants its rule, in order, `*` last. `Export_Id` and
    /// `Filesystem_Id` carry the stable fsid.
    public static func ganesha(_ exports: [ExportInfo]) throws(DepotError) -> String {
        var out = "# Managed by depotd: NFS exports of Depot's pools. Changes here are overwritten.\n"
        for export in exports.sorted(by: { $0.fsid < $1.fsid }) {
            try checkPath(export.path)
            out += """

                EXPORT {
                    Export_Id = \(export.fsid);
                    Path = "\(export.path)";
                    Pseudo = "\(export.pseudo)";
                    Filesystem_Id = \(export.fsid).\(export.fsid);
                    Access_Type = None;
                    Squash = Root_Squash;
                    Protocols = 3, 4;
                    Transports = TCP;
                    SecType = sys;
                    FSAL { Name = VFS; }

                """
            for rule in export.rules {
                var fields = [
                    "Clients = \(rule.client)", "Access_Type = \(rule.access == .rw ? "RW" : "RO")",
                    "Squash = \(rule.squash.ganeshaValue)",
                ]
                if let uid = rule.anonuid { fields.append("Anonymous_Uid = \(uid)") }
                if let gid = rule.anongid { fields.append("Anonymous_Gid = \(gid)") }
                out += "    CLIENT { \(fields.joined(separator: "; ")); }\n"
            }
            out += "}\n"
        }
        return out
    }
}

extension ExportSquash {
    /// exports(5) option.
    var exportsOption: String {
        switch self {
        case .none: "no_root_squash"
        case .root: "root_squash"
        case .all: "all_squash"
        }
    }

    /// Ganesha `Squash` value.
    var ganeshaValue: String {
        switch self {
        case .none: "No_Root_Squash"
        case .root: "Root_Squash"
        case .all: "All_Squash"
        }
    }
}
