{
  description = "hive-tui: a host engine and terminal console for hives of AI agents";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      runtimeDeps = ps: with ps; [ textual pygit2 asyncssh platformdirs pyyaml ];
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
