import os

from annoloop.compat.lost import script

ENVS = ["lost"]
ARGUMENTS = {
    "file_name": {"value": "annos.csv", "help": "Name of the CSV file with the annotations."}
}


class ExportCsv(script.Script):
    """Write the annotations of the task before to a CSV file and offer it for download."""

    def main(self):
        df = self.inp.to_df()
        fs = self.get_filesystem()
        name = "{}_{}".format(self.iteration, self.get_arg("file_name"))
        csv_path = self.get_path(name, context="instance")
        with fs.open(csv_path, "w") as f:
            df.to_csv(f, sep=",", header=True, index=False)
        self.logger.info(f"Wrote csv file: {fs.ls(os.path.split(csv_path)[0])}")
        self.outp.add_data_export(file_path=csv_path, fs=fs)


if __name__ == "__main__":
    my_script = ExportCsv()
