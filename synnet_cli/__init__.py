"""``synnet``: the command line over the synthesis core (and, with ``--server``, over a running service).

    synnet synthesize --t1 a.nii.gz --t1c b.nii.gz --dst T2 -o out/ [--mask m.nii.gz] [--format png]
    synnet fill DATASET -o OUT          # the BraSyn task: every case's missing modalities
    synnet evaluate --pred p.nii.gz --truth t.nii.gz [--mask m.nii.gz] [--seg s.nii.gz]
    synnet serve                        # = python -m service
    synnet models                       # what the model store serves

Each subcommand is one module with ``add_parser(subparsers)`` and ``run(args) -> int``. Local work
goes through :class:`synnet.Synthesizer`; ``--server URL`` sends the same work to ``POST /synthesize``
(:mod:`synnet_cli.remote`), and both give a :class:`synnet.api.SynthesisResult`, so the commands
write the same files either way.
"""
