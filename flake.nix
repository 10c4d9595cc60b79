{
  description = "hive-tui: a host engine and terminal console for hives of AI agents";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      runtimeDeps = ps: with ps; [ textual pygit2 asyncssh platformdirs pyyaml ];

      # The host engine as a system service: one hive per machine, its admin
      # socket open to the members of one group, and the manager's socket,
      # which files requests but never approves them, to another.
      nixosModule = { config, lib, pkgs, ... }:
        let
          cfg = config.services.hive-tui;
          inherit (lib) mkOption types;
          under = dir: path: lib.hasPrefix "${dir}/" path;
          below = dir: path: lib.removePrefix "${dir}/" path;
          sockets = [ cfg.socket ] ++ lib.optional (cfg.managerSocket != null) cfg.managerSocket;
          runDirs = map (below "/run") (lib.filter (under "/run") (lib.unique (map builtins.dirOf sockets)));

          # The nixos runtime: nixos-container as the host's containers module
          # builds it. Hosts whose stateVersion predates 22.05 keep containers
          # in /etc/containers and /var/lib/containers, and the host's
          # container@ units only see a container the same tool created.
          containerPrefix = lib.optionalString (lib.versionAtLeast config.system.stateVersion "22.05") "nixos-";
          containerDirs = {
            configurationDirectory = "/etc/${containerPrefix}containers";
            stateDirectory = "/var/lib/${containerPrefix}containers";
          };
          nixosContainer = pkgs.nixos-container.override containerDirs;
        in
        {
          options.services.hive-tui = {
            enable = lib.mkEnableOption "the hive-tui host engine and its admin socket";
            package = mkOption {
              type = types.package;
              default = self.packages.${pkgs.stdenv.hostPlatform.system}.hive-tui;
              defaultText = lib.literalExpression "hive-tui.packages.\${system}.hive-tui";
              description = "The hive-tui package the service runs.";
            };
            stateDir = mkOption {
              type = types.str;
              default = "/var/lib/hive-tui";
              description = "The hive's state root: agent repos, agent state, the meta flake, hive.db.";
            };
            socket = mkOption {
              type = types.str;
              default = "/run/hive-tui/host.sock";
              description = "The admin socket consoles connect to, locally or over SSH.";
            };
            group = mkOption {
              type = types.str;
              default = "hive-tui";
              description = "The group whose members may use the admin socket; the module creates it.";
            };
            managerSocket = mkOption {
              type = types.nullOr types.str;
              default = "/run/hive-tui/manager/manager.sock";
              description = ''
                The manager's socket: it files requests and reads approvals, diffs, tags and
                helper events there, and cannot approve, deny, pause or act on a container.
                Give the manager this socket's folder (a bind mount into its container), never
                the admin socket's. null serves the admin socket alone.
              '';
            };
            managerGroup = mkOption {
              type = types.str;
              default = "hive-tui-manager";
              description = "The group that owns the manager's socket: the manager's, and no operator's. The module creates it.";
            };
            runtime = mkOption {
              type = types.enum [ "local" "nixos" ];
              default = "nixos";
              description = "How agents run: nixos-container, or supervised local processes.";
            };

            # The nixos runtime.
            nixpkgs = mkOption {
              type = types.str;
              default = "path:${pkgs.path}";
              defaultText = lib.literalExpression ''"path:''${pkgs.path}"'';
              example = "github:NixOS/nixpkgs/nixos-25.05";
              description = ''
                The nixpkgs flake the agents' containers are built from. By default the
                host's own, so containers run what the host runs. The meta flake locks it
                once and keeps that lock; `hive-tui meta-log` shows it for every deploy.
              '';
            };
            nat = {
              enable = lib.mkEnableOption ''
                a way out for the agents: NAT from the containers' private networks
                (the host side of each is a `ve-*` interface) to the host's external one'';
              externalInterface = mkOption {
                type = types.nullOr types.str;
                default = null;
                example = "eth0";
                description = "The host interface the containers' traffic leaves through (networking.nat.externalInterface).";
              };
            };

            extraArgs = mkOption {
              type = types.listOf types.str;
              default = [ ];
              example = [ "--locker" "nix" ];
              description = "More options for `hive-tui`, placed before the `serve` verb with the other global ones.";
            };
          };

          config = lib.mkIf cfg.enable {
            assertions = [
              {
                assertion = cfg.runtime != "nixos" || config.boot.enableContainers;
                message = "services.hive-tui.runtime = \"nixos\" runs agents in nixos-container; set boot.enableContainers = true.";
              }
              {
                assertion = lib.hasPrefix "/" cfg.stateDir && lib.all (lib.hasPrefix "/") sockets;
                message = "services.hive-tui.stateDir, socket and managerSocket must be absolute paths.";
              }
              {
                assertion = cfg.managerSocket == null
                  || (cfg.managerSocket != cfg.socket && builtins.dirOf cfg.managerSocket != builtins.dirOf cfg.socket);
                message = "services.hive-tui.managerSocket needs a folder of its own, apart from the admin socket's, so that the manager can be given it alone.";
              }
              {
                assertion = cfg.managerSocket == null || cfg.managerGroup != cfg.group;
                message = "services.hive-tui.managerGroup must differ from services.hive-tui.group: the manager's group must not reach the admin socket.";
              }
            ];

            users.groups = { ${cfg.group} = { }; }
              // lib.optionalAttrs (cfg.managerSocket != null) { ${cfg.managerGroup} = { }; };

            systemd.services.hive-tui = {
              description = "hive-tui host engine";
              wantedBy = [ "multi-user.target" ];
              after = [ "network.target" "nix-daemon.socket" ];
              # nixos-container's destroy calls chattr (e2fsprogs), mountpoint
              # and umount (util-linux) by bare name.
              path = [ nixosContainer config.nix.package pkgs.git config.systemd.package pkgs.e2fsprogs pkgs.util-linux ];
              # nixos-container builds flakes with a bare `nix build`; a stock
              # NixOS host enables no experimental features.
              environment.NIX_CONFIG = "extra-experimental-features = nix-command flakes";
              serviceConfig = {
                # The options every verb takes, then the verb and its own.
                ExecStart = lib.escapeShellArgs (
                  [ "${cfg.package}/bin/hive-tui" "--state" cfg.stateDir "--runtime" cfg.runtime ]
                  ++ lib.optionals (cfg.runtime == "nixos") [
                    "--nixpkgs" cfg.nixpkgs
                    "--container-config-dir" containerDirs.configurationDirectory
                  ]
                  ++ cfg.extraArgs
                  ++ [ "serve" "--socket" cfg.socket "--group" cfg.group ]
                  ++ lib.optionals (cfg.managerSocket != null)
                    [ "--manager-socket" cfg.managerSocket "--manager-group" cfg.managerGroup ]
                );
                # Root, because it drives nixos-container and builds systems.
                User = "root";
                Restart = "on-failure";
                RestartSec = "5s";
                # On SIGTERM the engine refuses new work and lets deploys in
                # flight finish, so that no agent is left half switched; a
                # build can take a while.
                KillSignal = "SIGTERM";
                # SIGTERM to the engine alone: systemd's default would signal the
                # whole cgroup, the nixos-container, nix build and nix-env of
                # every deploy in flight included. What is left after
                # TimeoutStopSec is killed.
                KillMode = "mixed";
                TimeoutStopSec = "30min";
                # The state holds agent credentials; the socket's own mode and
                # group, set by the engine, are what open it to operators.
                UMask = "0077";
              }
              // lib.optionalAttrs (runDirs != [ ]) {
                RuntimeDirectory = runDirs;
                # Traversable, so group members reach the sockets inside;
                # each socket's own mode and group decide who may connect.
                RuntimeDirectoryMode = "0755";
              }
              // lib.optionalAttrs (under "/var/lib" cfg.stateDir) {
                StateDirectory = below "/var/lib" cfg.stateDir;
                StateDirectoryMode = "0700";
              };
            };

            networking.nat = lib.mkIf cfg.nat.enable {
              enable = true;
              internalInterfaces = [ "ve-+" ];
              externalInterface = cfg.nat.externalInterface;
            };
          };
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        hive-tui = pkgs.python3Packages.buildPythonApplication {
          pname = "hive-tui";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python3Packages.setuptools ];
          dependencies = runtimeDeps pkgs.python3Packages;
          # The suite drives a real nix, sshd and tmux, which the build
          # sandbox cannot host; the README's test command runs it.
          doCheck = false;
          meta.mainProgram = "hive-tui";
        };
        default = hive-tui;
      });

      nixosModules = {
        default = nixosModule;
        hive-tui = nixosModule;
      };

      # The module on a NixOS machine, for real (nix/vm-test.nix). It needs
      # KVM: `nix flake check` on a NixOS host runs it.
      checks.x86_64-linux.vm = import ./nix/vm-test.nix {
        inherit self;
        pkgs = nixpkgs.legacyPackages.x86_64-linux;
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: runtimeDeps ps ++ [ ps.pytest ps.hypothesis ]))
            pkgs.git
            pkgs.nix
            pkgs.openssh
            pkgs.tmux
          ];
        };
      });
    };
}
