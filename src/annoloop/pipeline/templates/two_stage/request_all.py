"""Request annotations for every image of the datasources before this script."""

from annoloop.pipeline import Script


class RequestAll(Script):
    """One work item per image of each datasource, in every connected annotation task."""

    ARGUMENTS = {"priority": {"value": 0.0, "help": "priority of the new work items"}}

    def main(self) -> None:
        total = 0
        for ds in self.inp.datasources:
            ids = ds.image_ids()
            self.outp.request_annos(ids, priority=float(self.get_arg("priority")))
            total += len(ids)
            self.progress(total, None, f"requested {total} images")
        self.logger.info("requested annotations for %d images", total)
