import DepotCore
import DepotTargets
import Hummingbird

extension TargetInfo: ResponseEncodable {}
extension PortalGroupList: ResponseEncodable {}
extension TargetList: ResponseEncodable {}
extension SessionList: ResponseEncodable {}

/// `/v1/targets`: iSCSI targets, their LUNs and ACLs. LUN maps are
/// registered on `luns` (an operator's group), the rest on `group`.
struct TargetRoutes {
    let targets: TargetManager

    func register(on group: RouterGroup<DepotRequestContext>, luns: RouterGroup<DepotRequestContext>) {
        group.get("targets") { _, _ -> TargetList in TargetList(targets: try await targets.list()) }
        group.post("targets") { request, context -> EditedResponse<TargetInfo> in
            let body = try await request.decode(as: CreateTargetRequest.self, context: context)
            return EditedResponse(status: .created, response: try await targets.create(body))
        }
        group.get("targets/:iqn") { _, context -> TargetInfo in
            try await targets.show(try context.parameters.decoded("iqn"))
        }
        group.get("sessions") { _, _ -> SessionList in SessionList(sessions: targets.sessions()) }
        group.delete("targets/:iqn") { request, context -> Response in
            try await targets.delete(
                try context.parameters.decoded("iqn"), force: try QueryFlag.parse(request, "force"))
            return Response(status: .noContent)
        }
        luns.post("targets/:iqn/luns") { request, context -> EditedResponse<TargetInfo> in
            let body = try await request.decode(as: MapLUNRequest.self, context: context)
            let iqn = try context.parameters.decoded("iqn")
            _ = try await targets.show(iqn)  // 404 is for the target the URL names...
            do {
                return EditedResponse(status: .created, response: try await targets.map(iqn, body))
            } catch let error as DepotError where error.code == .notFound {
                // ...a volume the body names that is not there is 422 (RFC 9110 §15.5.21).
                throw DepotError.unprocessable(error.message)
            }
        }
        luns.delete("targets/:iqn/luns/:lun") { _, context -> TargetInfo in
            let lun = try context.parameters.integer("lun", saying: "LUN")
            return try await targets.unmap(try context.parameters.decoded("iqn"), lun: lun)
        }
        group.put("targets/:iqn/chap") { request, context -> TargetInfo in
            let body = try await request.decode(as: CHAPRequest.self, context: context)
            return try await targets.setCHAP(try context.parameters.decoded("iqn"), body)
        }
        group.delete("targets/:iqn/chap") { _, context -> TargetInfo in
            try await targets.clearCHAP(try context.parameters.decoded("iqn"))
        }
        group.get("targets/:iqn/portal-groups") { _, context -> PortalGroupList in
            PortalGroupList(portalGroups: try await targets.portalGroups(try context.parameters.decoded("iqn")))
        }
        group.put("targets/:iqn/portal-groups/:group") { request, context -> PortalGroupList in
            let body = try await request.decode(as: SetPortalGroupStateRequest.self, context: context)
            let group = try context.parameters.integer("group", saying: "portal group")
            return PortalGroupList(
                portalGroups: try await targets.setPortalGroupState(
                    try context.parameters.decoded("iqn"), group: group, state: body.state, force: body.force ?? false))
        }
        group.put("targets/:iqn/portals") { request, context -> TargetInfo in
            let body = try await request.decode(as: SetPortalsRequest.self, context: context)
            return try await targets.setPortals(try context.parameters.decoded("iqn"), body.portals)
        }
        group.post("targets/:iqn/acls") { request, context -> EditedResponse<TargetInfo> in
            let body = try await request.decode(as: ACLRequest.self, context: context)
            return EditedResponse(
                status: .created,
                response: try await targets.addACL(
                    try context.parameters.decoded("iqn"), initiator: body.initiator, networks: body.networks ?? []))
        }
        group.delete("targets/:iqn/acls/:initiator") { _, context -> TargetInfo in
            try await targets.removeACL(
                try context.parameters.decoded("iqn"), initiator: try context.parameters.decoded("initiator"))
        }
    }
}
